package reporter

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

// newDatabase creates a database for the test in the shared cluster, owned by
// harness.ScramUser, and returns its name and the URL for that user.
func newDatabase(t testing.TB) (*harness.Cluster, string, string) {
	t.Helper()
	pg := harness.SharedPostgres(t)
	name := "rep_" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	if len(name) > 63 {
		name = name[:63]
	}
	if err := pg.SuperuserExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if err := pg.SuperuserExec("CREATE DATABASE " + name + " OWNER " + harness.ScramUser); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.SuperuserExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return pg, name, pg.DSN(harness.ScramUser, harness.ScramPass, name)
}

// superConn connects as the superuser to db, closed in cleanup.
func superConn(t testing.TB, pg *harness.Cluster, db string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.SuperuserDSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// count returns the rows of a reporter table (-1 when it does not exist).
func count(t testing.TB, conn *pgx.Conn, table Table) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+Schema+"."+string(table)).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

// recorder collects what the hooks report.
type recorder struct {
	mu      sync.Mutex
	errs    []error
	written map[Table]int
	dropped map[DropReason]int
	depth   map[Table]int
}

func (rec *recorder) hooks() Hooks {
	rec.written = map[Table]int{}
	rec.dropped = map[DropReason]int{}
	rec.depth = map[Table]int{}
	return Hooks{
		QueueDepth: func(t Table, n int) {
			rec.mu.Lock()
			rec.depth[t] = n
			rec.mu.Unlock()
		},
		Written: func(t Table, n int) {
			rec.mu.Lock()
			rec.written[t] += n
			rec.mu.Unlock()
		},
		Dropped: func(_ Table, reason DropReason, n int) {
			rec.mu.Lock()
			rec.dropped[reason] += n
			rec.mu.Unlock()
		},
		WriteError: func(err error) {
			rec.mu.Lock()
			rec.errs = append(rec.errs, err)
			rec.mu.Unlock()
		},
	}
}

func (rec *recorder) errors() []error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]error(nil), rec.errs...)
}

func (rec *recorder) depthOf(t Table) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.depth[t]
}

func (rec *recorder) writtenTo(t Table) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.written[t]
}

func (rec *recorder) droppedFor(reason DropReason) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.dropped[reason]
}

// fastOptions are Options for tests: short backoff and flush interval.
func fastOptions(url string, rec *recorder) Options {
	o := Options{
		URL:           url,
		FlushInterval: 50 * time.Millisecond,
		Backoff:       Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		WriteTimeout:  10 * time.Second,
		Instance:      "test-proxy",
	}
	if rec != nil {
		o.Hooks = rec.hooks()
	}
	return o
}

// start calls New and closes the reporter in cleanup.
func start(t testing.TB, opts Options) *Reporter {
	t.Helper()
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r
}

// closeWithin closes r with a deadline d from now and returns how long it
// took and its error.
func closeWithin(r *Reporter, d time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	t0 := time.Now()
	err := r.Close(ctx)
	return time.Since(t0), err
}

// refusedURL returns a URL of a loopback port nobody listens on.
func refusedURL(t testing.TB) string {
	t.Helper()
	port, err := harness.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://u:p@127.0.0.1:%d/db?sslmode=disable", port)
}

// blackHole accepts connections and never answers; it returns the URL.
func blackHole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return fmt.Sprintf("postgres://u:p@%s/db?sslmode=disable", ln.Addr())
}

// stallRelay relays TCP connections to target until Freeze, after which it
// stops moving bytes (a network that silently dropped everything).
type stallRelay struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	stop   chan struct{}
}

func newStallRelay(t testing.TB, target string) *stallRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stallRelay{ln: ln, target: target, stop: make(chan struct{})}
	go s.accept()
	t.Cleanup(func() {
		close(s.stop)
		_ = ln.Close()
	})
	return s
}

func (s *stallRelay) Addr() string { return s.ln.Addr().String() }

// Freeze stops all relaying.
func (s *stallRelay) Freeze() { s.frozen.Store(true) }

func (s *stallRelay) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", s.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		go s.pipe(c, b)
		go s.pipe(b, c)
	}
}

func (s *stallRelay) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if s.frozen.Load() {
			<-s.stop
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
