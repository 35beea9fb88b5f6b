package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roles and database provisioned in every cluster. Each login role reaches the server over TCP
// (127.0.0.0/8 and ::1) with one authentication method; the superuser only over the unix socket.
const (
	ScramUser = "scram_user" // pg_hba method scram-sha-256, password stored as SCRAM
	ScramPass = "scram_pass"
	MD5User   = "md5_user" // pg_hba method md5, password stored as MD5
	MD5Pass   = "md5_pass"
	ClearUser = "clear_user" // pg_hba method password (cleartext on the wire)
	ClearPass = "clear_pass"
	TrustUser = "trust_user" // pg_hba method trust, no password
	Superuser = "postgres"   // trust on the unix socket only
	TestDB    = "testdb"     // every role can create tables in its public schema
)

// PGOptions configure StartPostgres. The zero value is a plain cluster on 127.0.0.1.
type PGOptions struct {
	// ListenAddr is the IP address the server listens on: "127.0.0.1" (default), "127.0.0.2",
	// "::1", or any local address (add HBA lines for clients outside 127.0.0.0/8 and ::1).
	ListenAddr string
	// Port is the TCP port; 0 picks a free one.
	Port int
	// TLS turns on ssl with a server certificate from GenerateCerts (see Cluster.Certs).
	TLS bool
	// TLSOnly implies TLS and writes hostssl lines, so plain TCP connections are refused.
	TLSOnly bool
	// Conf lines are appended to postgresql.conf after the harness settings.
	Conf []string
	// HBA lines are placed before the generated pg_hba.conf lines.
	HBA []string
}

// Cluster is a PostgreSQL server in a temporary folder, started by StartPostgres, NewPostgres
// or SharedPostgres. Its methods are safe for concurrent use.
type Cluster struct {
	opts    PGOptions
	dir     string
	dataDir string
	sockDir string
	logPath string
	host    string
	port    int
	certs   *Certs
	cred    *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostgres creates and starts a cluster for one test and stops and removes it in cleanup.
// It calls Unavailable when the PostgreSQL programs are missing, and fails the test on any
// other error. On test failure the server log is printed.
func StartPostgres(t testing.TB, opts PGOptions) *Cluster {
	t.Helper()
	Require(t, "initdb", "postgres")
	c, err := NewPostgres(opts)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log (%s):\n%s", c.Addr(), Tail(c.Logs(), 60))
		}
		if err := c.Close(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	return c
}

// NewPostgres creates and starts a cluster; the caller must Close it. Use it where no
// testing.TB exists (TestMain); tests use StartPostgres or SharedPostgres.
func NewPostgres(opts PGOptions) (*Cluster, error) {
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1"
	}
	opts.TLS = opts.TLS || opts.TLSOnly
	pdir, err := processDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(pdir, "pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		opts: opts, dir: dir, host: opts.ListenAddr, port: opts.Port,
		dataDir: filepath.Join(dir, "data"), sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log"),
	}
	if err := c.create(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// create runs initdb, writes the configuration, starts the server and provisions roles.
func (c *Cluster) create() error {
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return err
		}
		c.cred = cred
	}
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return err
	}
	if c.opts.TLS {
		certs, err := GenerateCerts(filepath.Join(c.dir, "tls"), c.host)
		if err != nil {
			return err
		}
		c.certs = certs
	}
	if err := c.chownAll(); err != nil {
		return err
	}
	initdb, err := LookBin("initdb")
	if err != nil {
		return err
	}
	cmd := exec.Command(initdb, "-D", c.dataDir, "-U", Superuser, "-E", "UTF8", "--locale=C",
		"--no-sync", "-A", "trust", "--no-instructions")
	c.prepare(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.writeConfig(); err != nil {
		return err
	}
	if err := c.startFirst(); err != nil {
		return err
	}
	return c.provision()
}

// startFirst starts the server, picking another free port when the chosen one was taken.
func (c *Cluster) startFirst() error {
	var err error
	for range 3 {
		if c.opts.Port == 0 {
			if c.port, err = FreePort(c.host); err != nil {
				return err
			}
		}
		if err = c.Start(); err == nil || c.opts.Port != 0 || !strings.Contains(c.Logs(), "could not bind") {
			return err
		}
	}
	return err
}

func (c *Cluster) writeConfig() error {
	conf := []string{
		"",
		"# written by tests/harness",
		fmt.Sprintf("listen_addresses = '%s'", c.host),
		fmt.Sprintf("unix_socket_directories = '%s'", c.sockDir),
		"password_encryption = 'scram-sha-256'",
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
		"shared_buffers = 16MB",
		"max_connections = 200",
		"log_connections = on",
		"log_line_prefix = '%m [%p] %q%u@%d '",
	}
	if c.certs != nil {
		conf = append(conf, "ssl = on",
			fmt.Sprintf("ssl_cert_file = '%s'", c.certs.CertFile),
			fmt.Sprintf("ssl_key_file = '%s'", c.certs.KeyFile))
	}
	conf = append(conf, c.opts.Conf...)
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strings.Join(conf, "\n") + "\n"); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	hostType := "host"
	if c.opts.TLSOnly {
		hostType = "hostssl"
	}
	hba := append([]string{"# written by tests/harness"}, c.opts.HBA...)
	hba = append(hba, "local all "+Superuser+" trust")
	for _, um := range [][2]string{
		{ScramUser, "scram-sha-256"}, {MD5User, "md5"}, {ClearUser, "password"}, {TrustUser, "trust"},
	} {
		for _, network := range []string{"127.0.0.1/32", "::1/128", "127.0.0.0/8"} {
			hba = append(hba, fmt.Sprintf("%s all %s %s %s", hostType, um[0], network, um[1]))
		}
	}
	return os.WriteFile(filepath.Join(c.dataDir, "pg_hba.conf"), []byte(strings.Join(hba, "\n")+"\n"), 0o600)
}

// provision creates the roles and the test database.
func (c *Cluster) provision() error {
	stmts := []string{
		"SET password_encryption = 'scram-sha-256'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", ScramUser, ScramPass),
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", ClearUser, ClearPass),
		fmt.Sprintf("CREATE ROLE %s LOGIN", TrustUser),
		"SET password_encryption = 'md5'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", MD5User, MD5Pass),
		"CREATE DATABASE " + TestDB,
		"GRANT ALL ON DATABASE " + TestDB + " TO PUBLIC",
	}
	if err := c.execStatements("postgres", stmts); err != nil {
		return err
	}
	users := strings.Join([]string{Superuser, ScramUser, MD5User, ClearUser, TrustUser}, ", ")
	return c.execStatements(TestDB, []string{
		"GRANT ALL ON SCHEMA public TO PUBLIC",
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + users + " IN SCHEMA public GRANT ALL ON TABLES TO PUBLIC",
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + users + " IN SCHEMA public GRANT ALL ON SEQUENCES TO PUBLIC",
	})
}

func (c *Cluster) execStatements(db string, stmts []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.SuperuserDSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// SuperuserExec runs sql (several statements are allowed when there are no args) in TestDB as
// the superuser, over the unix socket.
func (c *Cluster) SuperuserExec(sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.SuperuserDSN(TestDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// Start starts the server on its port and data folder and waits until it accepts connections.
// It is used after Stop or Kill to restart the same cluster.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("postgres already running")
	}
	bin, err := LookBin("postgres")
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-D", c.dataDir, "-p", strconv.Itoa(c.port))
	c.prepare(cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go waitProcess(cmd, done)
	if err := waitPostmasterReady(c.dataDir, cmd.Process.Pid, done, 60*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("postgres on %s: %w\n%s", c.Addr(), err, Tail(c.Logs(), 20))
	}
	c.cmd, c.done = cmd, done
	return nil
}

// Stop shuts the server down (fast mode: sessions are terminated) and waits for it to exit.
func (c *Cluster) Stop() error { return c.shutdown(syscall.SIGINT, 60*time.Second) }

// Kill stops the server in immediate mode, as a crash would; Start then runs crash recovery.
func (c *Cluster) Kill() error { return c.shutdown(syscall.SIGQUIT, 10*time.Second) }

func (c *Cluster) shutdown(sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("postgres did not stop within %s after %v; killed", grace, sig)
	}
}

// Close stops the server and removes its folder.
func (c *Cluster) Close() error {
	err := c.Stop()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// DSN returns a postgres URL for user over TCP. With TLS on, it asks for verify-full against
// the test CA; otherwise sslmode=disable. An empty pass leaves the password out.
func (c *Cluster) DSN(user, pass, db string) string {
	u := url.URL{Scheme: "postgres", Host: c.Addr(), Path: "/" + db}
	if pass != "" {
		u.User = url.UserPassword(user, pass)
	} else {
		u.User = url.User(user)
	}
	q := url.Values{}
	if c.certs != nil {
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", c.certs.CAFile)
	} else {
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// BackendURL returns a URL without credentials, the form PG_BACKEND_URL takes. With TLS on it
// asks for verify-full (pass Certs().CAFile as PG_BACKEND_CA_PATH).
func (c *Cluster) BackendURL(db string) string {
	mode := "disable"
	if c.certs != nil {
		mode = "verify-full"
	}
	return fmt.Sprintf("postgres://%s/%s?sslmode=%s", c.Addr(), db, mode)
}

// SuperuserDSN returns a keyword/value DSN for the superuser over the unix socket.
func (c *Cluster) SuperuserDSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.sockDir, c.port, Superuser, db)
}

// Addr returns host:port of the TCP listener ("[::1]:port" for IPv6).
func (c *Cluster) Addr() string { return net.JoinHostPort(c.host, strconv.Itoa(c.port)) }

// Host returns the IP address the server listens on.
func (c *Cluster) Host() string { return c.host }

// Port returns the TCP port.
func (c *Cluster) Port() int { return c.port }

// SocketDir returns the folder of the unix socket.
func (c *Cluster) SocketDir() string { return c.sockDir }

// DataDir returns the data folder.
func (c *Cluster) DataDir() string { return c.dataDir }

// Certs returns the TLS files of the server, or nil when TLS is off.
func (c *Cluster) Certs() *Certs { return c.certs }

// Logs returns the server log so far.
func (c *Cluster) Logs() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// prepare sets the working folder, environment and (as root) credentials of a server program.
func (c *Cluster) prepare(cmd *exec.Cmd) {
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
}

// chownAll gives the cluster folder to the postgres OS user when running as root.
func (c *Cluster) chownAll() error {
	if c.cred == nil {
		return nil
	}
	return filepath.WalkDir(c.dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(c.cred.Uid), int(c.cred.Gid))
	})
}

// postgresCredential returns the credentials of the postgres OS user.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres OS user: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, nil
}

// waitPostmasterReady polls postmaster.pid until it names pid and says "ready".
func waitPostmasterReady(dataDir string, pid int, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("server exited during start-up")
		default:
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
		if err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && strings.TrimSpace(lines[0]) == strconv.Itoa(pid) &&
				strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", timeout)
}

// waitProcess reaps cmd and closes done when it has exited.
func waitProcess(cmd *exec.Cmd, done chan<- struct{}) {
	_ = cmd.Wait()
	close(done)
}

// Tail returns the last n lines of s (logs in failure messages).
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
