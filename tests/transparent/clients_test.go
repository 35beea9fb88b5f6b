//go:build linux

package transparent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// sessionSeen is a backend session of the client as pg_stat_activity showed it, and who held
// the TCP socket at client_addr:client_port at that moment.
type sessionSeen struct {
	Addr     string
	Port     int
	ByAgent  bool // the agent process holds a socket with that local port
	ByClient bool // the client process itself does
}

// observation is what one client run left to check.
type observation struct {
	client   string
	pid      int
	output   string
	sessions []sessionSeen
	peer     *peerReport
	dialled  string
}

// clientRun describes one client process.
type clientRun struct {
	kind    string // psql, pgx, pgbench-init, pgbench, checksum
	at      placement
	target  string // host:port the client dials
	seconds int    // pgbench -T
	clients int    // pgbench -c
}

var tokenSeq int

// runClient runs a client to completion while watching pg_stat_activity of every cluster the
// scenario knows for the client's sessions.
func (w *world) runClient(r clientRun) (*observation, error) {
	host, port, err := net.SplitHostPort(r.target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", r.target, err)
	}
	tokenSeq++
	token := fmt.Sprintf("pgpt_token_%d_%d", os.Getpid(), tokenSeq)
	hold := fmt.Sprintf("SELECT '%s', pg_sleep(1)", token)
	pattern := "%" + token + "%"
	env := []string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + harness.ScramPass, "PGCONNECT_TIMEOUT=10", "LC_ALL=C"}
	dsn := (&url.URL{
		Scheme: "postgres", User: url.UserPassword(harness.ScramUser, harness.ScramPass),
		Host: r.target, Path: "/" + harness.TestDB, RawQuery: "sslmode=disable&connect_timeout=10",
	}).String()
	conn := []string{"-h", host, "-p", port, "-U", harness.ScramUser}
	var argv []string
	switch r.kind {
	case "psql":
		argv = append(append([]string{"psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, conn...),
			"-d", harness.TestDB, "-c", hold)
	case "pgx":
		argv = []string{os.Args[0]}
		env = append(env, helperEnv+"=peer", helperDSNEnv+"="+dsn, helperHoldEnv+"="+hold)
	case "checksum":
		argv = []string{os.Args[0]}
		env = append(env, helperEnv+"=checksum", helperDSNEnv+"="+dsn)
		pattern = ""
	case "pgbench-init":
		argv = append(append([]string{"pgbench", "-i", "-q", "-s", "1"}, conn...), harness.TestDB)
		pattern = ""
	case "pgbench":
		argv = append(append([]string{"pgbench", "-n", "-S", "-T", strconv.Itoa(r.seconds),
			"-c", strconv.Itoa(r.clients), "-j", strconv.Itoa(min(r.clients, 2))}, conn...), harness.TestDB)
		pattern = "%pgbench_accounts%"
	default:
		return nil, fmt.Errorf("unknown client %q", r.kind)
	}
	cmd := r.at.command(argv, env)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	obs := &observation{client: r.kind, pid: cmd.Process.Pid, dialled: r.target}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seen []sessionSeen
	var pollErr error
	if pattern != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen, pollErr = w.watchSessions(ctx, pattern, obs.pid)
		}()
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("%s did not finish within 90 s", r.kind)
		<-waitErr
	}
	stop()
	wg.Wait()
	obs.output = out.String()
	obs.sessions = seen
	w.last = obs
	if err != nil {
		return obs, fmt.Errorf("%s against %s failed: %v\n%s", r.kind, r.target, err, obs.output)
	}
	if pollErr != nil {
		return obs, pollErr
	}
	switch r.kind {
	case "pgx":
		var p peerReport
		if err := json.Unmarshal([]byte(firstLine(obs.output)), &p); err != nil {
			return obs, fmt.Errorf("pgx helper output %q: %w", obs.output, err)
		}
		obs.peer = &p
	}
	return obs, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// watchSessions polls pg_stat_activity of the scenario's clusters until ctx ends and returns
// the sessions whose query text matches pattern, with who held their client-side socket.
func (w *world) watchSessions(ctx context.Context, pattern string, clientPID int) ([]sessionSeen, error) {
	var conns []*pgx.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
	}()
	for _, cl := range w.clusters {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := pgx.Connect(cctx, cl.SuperuserDSN(harness.TestDB))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("watch pg_stat_activity on %s: %w", cl.Addr(), err)
		}
		conns = append(conns, c)
	}
	byKey := map[string]int{}
	var out []sessionSeen
	agentPID := 0
	if w.agent != nil && w.agent.running() {
		agentPID = w.agent.pid()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, c := range conns {
			qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rows, err := c.Query(qctx, `SELECT coalesce(host(client_addr), ''), coalesce(client_port, 0)
				FROM pg_stat_activity
				WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE $1`, pattern)
			if err != nil {
				cancel()
				return out, err
			}
			var found []sessionSeen
			for rows.Next() {
				var s sessionSeen
				if err := rows.Scan(&s.Addr, &s.Port); err != nil {
					rows.Close()
					cancel()
					return out, err
				}
				found = append(found, s)
			}
			rows.Close()
			cancel()
			for _, s := range found {
				key := fmt.Sprintf("%s:%d", s.Addr, s.Port)
				if _, ok := byKey[key]; ok || s.Port == 0 {
					continue
				}
				if agentPID != 0 {
					if ports, err := tcpPortsOf(agentPID); err == nil {
						s.ByAgent = ports[s.Port]
					}
				}
				if ports, err := tcpPortsOf(clientPID); err == nil {
					s.ByClient = ports[s.Port]
				}
				if !s.ByAgent && !s.ByClient {
					// The session ended between the query and the socket scan
					// (pgbench -i's short connections): look again next tick.
					continue
				}
				byKey[key] = len(out)
				out = append(out, s)
			}
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-tick.C:
		}
	}
}

// loopResult is what a client connecting in a loop across an agent restart saw.
type loopResult struct {
	attempts         []attempt
	stopAt, readyAt  int64 // Unix ms: SIGTERM sent, new agent healthy
	viaAgent, direct [3]int
	failed           [3]int
	failures         []string
}

// phase of an attempt: 0 before SIGTERM, 1 in the gap, 2 once the new agent was ready.
func (l *loopResult) phase(a attempt) int {
	switch {
	case a.At < l.stopAt:
		return 0
	case a.At < l.readyAt:
		return 1
	}
	return 2
}

func (l *loopResult) classify() {
	for _, a := range l.attempts {
		p := l.phase(a)
		switch {
		case !a.OK:
			l.failed[p]++
			l.failures = append(l.failures, fmt.Sprintf("phase %d: %s", p, a.Error))
		case a.BackendPort == a.LocalPort:
			l.direct[p]++
		default:
			l.viaAgent[p]++
		}
	}
}

func (l *loopResult) String() string {
	names := []string{"before SIGTERM", "gap (SIGTERM → new agent ready)", "after the new agent was ready"}
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "%s: %d via agent, %d direct, %d failed; ", n, l.viaAgent[i], l.direct[i], l.failed[i])
	}
	fmt.Fprintf(&b, "gap %d ms", l.readyAt-l.stopAt)
	return b.String()
}

// runLoop starts a pgx client that connects every 50 ms for secs seconds, restarts the agent
// after restartAfter seconds, and collects every attempt.
func (w *world) runLoop(target string, secs, restartAfter int) (*loopResult, error) {
	if w.agent == nil {
		return nil, errors.New("no agent running")
	}
	dsn := (&url.URL{
		Scheme: "postgres", User: url.UserPassword(harness.ScramUser, harness.ScramPass),
		Host: target, Path: "/" + harness.TestDB, RawQuery: "sslmode=disable&connect_timeout=3",
	}).String()
	env := []string{"PATH=" + os.Getenv("PATH"), helperEnv + "=loop", helperDSNEnv + "=" + dsn,
		helperSecsEnv + "=" + strconv.Itoa(secs)}
	cmd := placement{cg: w.cg}.command([]string{os.Args[0]}, env)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	res := &loopResult{}
	time.Sleep(time.Duration(restartAfter) * time.Second)
	res.stopAt = time.Now().UnixMilli()
	restartErr := w.restartAgent()
	res.readyAt = time.Now().UnixMilli()
	waitErr := cmd.Wait()
	if restartErr != nil {
		return nil, restartErr
	}
	if waitErr != nil {
		return nil, fmt.Errorf("loop client: %v\n%s", waitErr, errOut.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a attempt
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return nil, fmt.Errorf("loop client line %q: %w", line, err)
		}
		res.attempts = append(res.attempts, a)
	}
	res.classify()
	return res, nil
}
