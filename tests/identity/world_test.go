package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/tests/oidcissuer"
	"github.com/pgproxy/pgproxy/tests/oidcissuer/zitadelop"
)

// world is the state of one scenario: the servers it started, the proxy, the current token and
// client session, and the outcome of the last action that later steps check.
type world struct {
	s   *suite
	tb  *stepTB
	ctx context.Context

	pg      *harness.Cluster // the backend; the suite's cluster unless a step starts another
	account string           // the service account the proxy logs in as

	issuer       *oidcissuer.Issuer
	zitadel      *zitadelop.Provider
	discoveryURL string
	issuerCA     string // PEM file for OIDC_CERT_PATH

	env        map[string]string
	proxy      *harness.Proxy
	proxies    []*harness.Proxy
	proxyStart time.Time

	token   string   // the token the next login presents
	tokens  []string // every token presented to a proxy, for the log check
	conn    *pgx.Conn
	connErr error    // outcome of the last login
	result  string   // rows of the last query: columns joined by "|", rows by "\n"
	stmtErr error    // outcome of the last statement
	probes  []string // application_name seen by each of several sessions

	// key rotation and flood bookkeeping
	retiredToken string
	floodTokens  []string
	jwksMark     int64
	acceptedAt   time.Time // when the last successful pgx login returned
	markTime     time.Time
	floodErrs    []error       // outcome of each flood login, once floodDone is closed
	floodLeft    atomic.Int64  // flood logins still running
	floodDone    chan struct{} // closed when every flood login has ended
	floodStart   time.Time

	mu       sync.Mutex
	errs     []string
	cleanups []func()
	failed   bool
}

// stepTB is the testing.TB that steps hand to the harness. It embeds the feature's subtest for
// logging, but a fatal failure becomes a panic that guard turns into the step's error (so godog
// reports the failed step), errors are collected for the scenario, and cleanups and temporary
// folders belong to the scenario: the After hook runs them.
type stepTB struct {
	testing.TB
	w *world
}

// stepAbort is the panic value of stepTB's Fatal and Skip family.
type stepAbort struct {
	msg  string
	skip bool
}

func (s *stepTB) Helper()                   { s.TB.Helper() }
func (s *stepTB) Fatalf(f string, a ...any) { panic(stepAbort{msg: fmt.Sprintf(f, a...)}) }
func (s *stepTB) Fatal(a ...any)            { panic(stepAbort{msg: fmt.Sprint(a...)}) }
func (s *stepTB) FailNow()                  { panic(stepAbort{msg: "FailNow called"}) }
func (s *stepTB) Skipf(f string, a ...any)  { panic(stepAbort{msg: fmt.Sprintf(f, a...), skip: true}) }
func (s *stepTB) Skip(a ...any)             { panic(stepAbort{msg: fmt.Sprint(a...), skip: true}) }
func (s *stepTB) SkipNow()                  { panic(stepAbort{msg: "SkipNow called", skip: true}) }
func (s *stepTB) Errorf(f string, a ...any) { s.w.addError(fmt.Sprintf(f, a...)) }
func (s *stepTB) Error(a ...any)            { s.w.addError(fmt.Sprint(a...)) }
func (s *stepTB) Fail()                     { s.w.addError("Fail called") }
func (s *stepTB) Cleanup(f func())          { s.w.addCleanup(f) }

// Failed reports whether the scenario failed, so harness cleanups print server logs.
func (s *stepTB) Failed() bool {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.failed || len(s.w.errs) > 0
}

// TempDir returns a folder removed when the scenario ends.
func (s *stepTB) TempDir() string {
	dir, err := os.MkdirTemp("", "pgproxy-identity-")
	if err != nil {
		s.Fatalf("temporary folder: %v", err)
	}
	s.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (w *world) addError(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, msg)
}

func (w *world) addCleanup(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cleanups = append(w.cleanups, f)
}

// guard runs f, which calls the harness, and turns a stepTB fatal failure into an error and a
// skip into godog.ErrSkip.
func (w *world) guard(f func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		a, ok := r.(stepAbort)
		if !ok {
			panic(r)
		}
		if a.skip {
			w.tb.Logf("skipped: %s", a.msg)
			err = godog.ErrSkip
			return
		}
		err = errors.New(a.msg)
	}()
	f()
	return w.collected()
}

// collected returns and clears the errors reported through stepTB.Errorf.
func (w *world) collected() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) == 0 {
		return nil
	}
	err := errors.New(strings.Join(w.errs, "\n"))
	w.errs = nil
	w.failed = true
	return err
}

// initScenario wires steps and hooks for one scenario of the feature running as t.
func (s *suite) initScenario(t *testing.T, sc *godog.ScenarioContext) {
	w := &world{s: s}
	w.tb = &stepTB{TB: t, w: w}
	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		w.ctx = ctx
		w.pg = s.pg
		w.account = scramAccount
		w.env = map[string]string{}
		return ctx, nil
	})
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		w.mu.Lock()
		w.failed = w.failed || err != nil
		w.mu.Unlock()
		leak := w.checkNoTokenInLogs()
		w.finish()
		if leak != nil {
			return ctx, leak
		}
		return ctx, w.collected()
	})
	w.registerSetupSteps(sc)
	w.registerLoginSteps(sc)
	w.registerStatementSteps(sc)
	w.registerKeySteps(sc)
}

// finish closes the session and runs the scenario's cleanups, last registered first.
func (w *world) finish() {
	if w.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = w.conn.Close(ctx)
		cancel()
		w.conn = nil
	}
	w.mu.Lock()
	fns := w.cleanups
	w.cleanups = nil
	w.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		_ = w.guard(fns[i])
	}
}

// checkNoTokenInLogs looks for every token presented in this scenario, and for its payload
// and signature parts, in the output of every proxy the scenario started.
func (w *world) checkNoTokenInLogs() error {
	for _, p := range w.proxies {
		logs := p.Logs()
		for _, tok := range w.tokens {
			for _, needle := range tokenNeedles(tok) {
				if strings.Contains(logs, needle) {
					return fmt.Errorf("proxy log holds (part of) a token: %.40q… found", needle)
				}
			}
		}
	}
	return nil
}

// tokenNeedles returns the strings whose presence would reveal tok: the token itself and its
// payload and signature segments (the header alone is not secret and is often shared).
func tokenNeedles(tok string) []string {
	out := []string{tok}
	parts := strings.Split(tok, ".")
	for _, p := range parts[1:] {
		if len(p) >= 16 {
			out = append(out, p)
		}
	}
	return out
}
