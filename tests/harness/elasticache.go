package harness

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ElastiCacheOptions configure StartElastiCache.
type ElastiCacheOptions struct {
	// CacheName is the replication group or serverless cache tokens are
	// signed for; User the IAM-enabled user.
	CacheName, User string
	// Serverless: tokens must name ResourceType=ServerlessCache.
	Serverless bool
	// Upstream is the redis-server behind; UpstreamPassword is User's
	// password there (an ACL user: --user <User> on ><password> ~* &* +@all).
	Upstream         string
	UpstreamPassword string
}

// ElastiCache is a stand-in for an ElastiCache (Redis OSS / Valkey)
// endpoint with IAM authentication: TLS only; the password of AUTH and of
// HELLO … AUTH is checked as an ElastiCache IAM token (SigV4 presigned
// elasticache connect for the cache name and user, the account's region, a
// known and unexpired key), then replaced by the user's password on the
// real redis-server behind, or by a wrong one so that the server refuses
// it (WRONGPASS) in its own words and order.
type ElastiCache struct {
	// Addr is host:port of the TLS listener.
	Addr string

	o    ElastiCacheOptions
	acct *AWSAccount
	tls  *tls.Config

	mu    sync.Mutex
	auths []ElastiCacheAuth
}

// ElastiCacheAuth is an AUTH (or HELLO with AUTH) the stand-in judged.
type ElastiCacheAuth struct {
	// Conn numbers the client connection (1 for the first).
	Conn int
	// Command is AUTH or HELLO.
	Command string
	// Key is the access key that signed the token ("" when unreadable).
	Key string
	Err error
	At  time.Time
}

// StartElastiCache serves the stand-in on a free loopback port with certs'
// server certificate. It stops in cleanup.
func StartElastiCache(t testing.TB, acct *AWSAccount, certs *Certs, o ElastiCacheOptions) *ElastiCache {
	t.Helper()
	f := newFront(t, certs)
	e := &ElastiCache{Addr: f.addr, tls: f.tls, o: o, acct: acct}
	f.serve(t, e.handle)
	return e
}

// Auths returns the authentications judged so far.
func (e *ElastiCache) Auths() []ElastiCacheAuth {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ElastiCacheAuth(nil), e.auths...)
}

func (e *ElastiCache) handle(c net.Conn, id int) {
	defer c.Close()
	tc := tls.Server(c, e.tls)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	up, err := net.DialTimeout("tcp", e.o.Upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(tc, up); tc.Close() }()
	br, bw := bufio.NewReader(tc), bufio.NewWriter(up)
	for {
		args, err := readRESPCommand(br)
		if err != nil {
			return
		}
		e.judge(id, args)
		writeRESPCommand(bw, args)
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// judge checks the token of an AUTH or HELLO … AUTH in args and replaces it
// with the upstream password (accepted) or a wrong one (refused).
func (e *ElastiCache) judge(id int, args []string) {
	cmd := strings.ToUpper(args[0])
	user, pass := -1, -1
	switch {
	case cmd == "AUTH" && len(args) == 3:
		user, pass = 1, 2
	case cmd == "AUTH" && len(args) == 2:
		pass = 1
	case cmd == "HELLO":
		for i := 1; i+2 < len(args); i++ {
			if strings.EqualFold(args[i], "AUTH") {
				user, pass = i+1, i+2
				break
			}
		}
	}
	if pass < 0 {
		return
	}
	name := "default"
	if user > 0 {
		name = args[user]
	}
	a := ElastiCacheAuth{Conn: id, Command: cmd, At: time.Now()}
	p, err := VerifyPresigned(args[pass], "elasticache", e.acct.Region, time.Now(), e.acct.Lookup)
	a.Key = p.Key.ID
	switch {
	case err != nil:
	case p.Host != e.o.CacheName:
		err = fmt.Errorf("token for %q, this cache is %q", p.Host, e.o.CacheName)
	case p.Query.Get("Action") != "connect":
		err = fmt.Errorf("action %q", p.Query.Get("Action"))
	case p.Query.Get("User") != name || name != e.o.User:
		err = fmt.Errorf("token for user %q, AUTH as %q", p.Query.Get("User"), name)
	case e.o.Serverless != (p.Query.Get("ResourceType") == "ServerlessCache"):
		err = fmt.Errorf("ResourceType %q for a serverless=%v cache", p.Query.Get("ResourceType"), e.o.Serverless)
	}
	a.Err = err
	e.mu.Lock()
	e.auths = append(e.auths, a)
	e.mu.Unlock()
	if err != nil {
		args[pass] = "refused-by-the-elasticache-stand-in"
	} else {
		args[pass] = e.o.UpstreamPassword
	}
}

// maxRESPArgs bounds a command the stand-in reads.
const maxRESPArgs = 1 << 16

// readRESPCommand reads one command: an array of bulk strings.
func readRESPCommand(br *bufio.Reader) ([]string, error) {
	n, err := readRESPLen(br, '*')
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxRESPArgs {
		return nil, fmt.Errorf("command of %d arguments", n)
	}
	args := make([]string, n)
	for i := range args {
		l, err := readRESPLen(br, '$')
		if err != nil {
			return nil, err
		}
		if l < 0 || l > 512<<20 {
			return nil, fmt.Errorf("bulk string of %d bytes", l)
		}
		buf := make([]byte, l+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:l])
	}
	return args, nil
}

func readRESPLen(br *bufio.Reader, prefix byte) (int, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[0] != prefix || !strings.HasSuffix(line, "\r\n") {
		return 0, errors.New("not a RESP array of bulk strings (inline commands are not taken)")
	}
	return strconv.Atoi(line[1 : len(line)-2])
}

func writeRESPCommand(w *bufio.Writer, args []string) {
	fmt.Fprintf(w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// User is the IAM user the stand-in takes.
func (e *ElastiCache) User() string { return e.o.User }
