package masking

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/goccy/go-yaml"
	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// attempt is one entry of testdata/bypasses.yaml: statements that bring a
// clear value of a masked column to the client on a direct connection.
type attempt struct {
	Name      string `yaml:"name"`
	Technique string `yaml:"technique"`
	// Role runs the statements (analyst when empty).
	Role string `yaml:"role"`
	// Options is the startup packet's options parameter.
	Options string `yaml:"options"`
	// Setup and Cleanup run as the superuser before and after each run
	// (directly and through each proxy); they must be idempotent.
	Setup   []string `yaml:"setup"`
	Cleanup []string `yaml:"cleanup"`
	// SQL are the client's messages, in order, each a simple Query (of one
	// or more statements), a COPY ... TO STDOUT, or a COPY ... FROM STDIN
	// followed by a line "--data" and the rows it sends, on one session; one
	// written "@role SQL" runs on a session of that role instead.
	SQL []string `yaml:"sql"`
	// Expect is the outcome through the proxy with masking.yaml: masked
	// (every statement runs as it does directly, with masked values) or
	// refused (a statement gets 42501 from the masking); ExpectNoHMAC the
	// outcome with masking_nohmac.yaml (Expect when empty).
	Expect       string `yaml:"expect"`
	ExpectNoHMAC string `yaml:"expect_nohmac"`
	// Differs, when set, says why a masked statement may fail through the
	// proxy where it succeeds directly (or the reverse).
	Differs string `yaml:"differs"`
}

func (a *attempt) role() string {
	if a.Role == "" {
		return "analyst"
	}
	return a.Role
}

func (a *attempt) expect(target string) string {
	if target == proxyNoHMAC && a.ExpectNoHMAC != "" {
		return a.ExpectNoHMAC
	}
	return a.Expect
}

var corpus struct {
	once     sync.Once
	err      error
	attempts map[string]*attempt
	order    []string
}

func loadCorpus() (map[string]*attempt, []string, error) {
	corpus.once.Do(func() {
		data, err := os.ReadFile(filepath.Join("testdata", "bypasses.yaml"))
		if err != nil {
			corpus.err = err
			return
		}
		var list []*attempt
		if err := yaml.UnmarshalWithOptions(data, &list, yaml.DisallowUnknownField()); err != nil {
			corpus.err = fmt.Errorf("testdata/bypasses.yaml: %s", yaml.FormatError(err, false, false))
			return
		}
		corpus.attempts = map[string]*attempt{}
		for _, a := range list {
			if corpus.attempts[a.Name] != nil {
				corpus.err = fmt.Errorf("attempt %q is listed twice", a.Name)
				return
			}
			corpus.attempts[a.Name] = a
			corpus.order = append(corpus.order, a.Name)
		}
	})
	return corpus.attempts, corpus.order, corpus.err
}

// outcomes are the results of the attempts run, for the report.
var outcomes struct {
	mu   sync.Mutex
	byID map[string]map[string]string
}

func noteOutcome(name, target, outcome string) {
	outcomes.mu.Lock()
	defer outcomes.mu.Unlock()
	if outcomes.byID == nil {
		outcomes.byID = map[string]map[string]string{}
	}
	if outcomes.byID[name] == nil {
		outcomes.byID[name] = map[string]string{}
	}
	outcomes.byID[name][target] = outcome
}

// outcomeTable is a Markdown table of the attempts run: technique, outcome
// with masking.yaml and with masking_nohmac.yaml.
func outcomeTable() string {
	attempts, order, err := loadCorpus()
	if err != nil {
		return err.Error()
	}
	outcomes.mu.Lock()
	defer outcomes.mu.Unlock()
	var b strings.Builder
	b.WriteString("| attempt | technique | masking.yaml | masking_nohmac.yaml |\n|---|---|---|---|\n")
	for _, name := range order {
		o := outcomes.byID[name]
		if o == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, attempts[name].Technique, o[proxyHMAC], o[proxyNoHMAC])
	}
	return b.String()
}

// run is what one run of an attempt brought back.
type run struct {
	outcomes []*outcome
	text     string
}

// runAttempt runs an attempt's statements as its role on a target, between
// its setup and cleanup; through a proxy it then checks that the session
// goes on.
func runAttempt(a *attempt, target string) (*run, error) {
	if err := superuser(a.Cleanup); err != nil {
		return nil, fmt.Errorf("cleanup before: %w", err)
	}
	if err := superuser(a.Setup); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer superuser(a.Cleanup)
	// A statement "@role SQL" runs on a session of that role (opened on
	// first use); the others on the attempt's role.
	sessions := map[string]*session{}
	defer func() {
		var pids []uint32
		for _, s := range sessions {
			if s.conn != nil {
				pids = append(pids, s.conn.PgConn().PID())
			}
			s.close()
		}
		// The next target's attempt must not see this one's temporary
		// objects: the server drops them as its session exits, a moment
		// after the client has gone (BUGS 39).
		awaitEnded(pids)
	}()
	open := func(role string) (*session, error) {
		if s := sessions[role]; s != nil {
			return s, nil
		}
		cfg, err := connConfig(target, role, "")
		if err != nil {
			return nil, err
		}
		if a.Options != "" {
			cfg.RuntimeParams["options"] = a.Options
		}
		s, err := connect(cfg)
		if err != nil {
			return nil, err
		}
		sessions[role] = s
		return s, nil
	}
	s, err := open(a.role())
	if err != nil {
		if target != "direct" && refusedAtStartup(err) {
			// The proxy refused the startup packet itself (its settings).
			return &run{outcomes: []*outcome{{sql: "(startup)", err: err}}, text: err.Error()}, nil
		}
		return nil, err
	}
	r := &run{}
	var text strings.Builder
	for _, sql := range a.SQL {
		on := s
		if rest, ok := strings.CutPrefix(sql, "@"); ok {
			role, stmt, _ := strings.Cut(rest, " ")
			if on, err = open(role); err != nil {
				return nil, err
			}
			sql = stmt
		}
		o := on.exec(sql)
		r.outcomes = append(r.outcomes, o)
		text.WriteString(o.text())
	}
	// Notices that arrive late (asynchronous NOTIFY) are read with a last
	// round trip.
	for _, s := range sessions {
		text.WriteString(s.exec("SELECT 1").text())
	}
	r.text = text.String()
	if target != "direct" {
		for _, s := range sessions {
			if err := usable(s); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// superuser runs statements as the superuser, each on its own.
func superuser(stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range stmts {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

func registerBypassSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^the bypass attempt "(.*)" leaks a clear value on a direct connection$`, func(name string) error {
		a, err := w.attempt(name)
		if err != nil {
			return err
		}
		r, err := runAttempt(a, "direct")
		if err != nil {
			return err
		}
		found := shared.leaks[proxyHMAC].find(r.text)
		if len(found) == 0 {
			return fmt.Errorf("a broken test: %s shows no clear value on a direct connection:\n%s", name, r.text)
		}
		w.directRun = r
		w.t.Logf("%s directly: %s", name, strings.Join(found, "; "))
		return nil
	})
	sc.Step(`^through the proxy( without hmac)? it shows no clear value and is (masked|refused)$`, func(without, want string) error {
		target := proxyHMAC
		if without != "" {
			target = proxyNoHMAC
		}
		return w.throughProxy(target, want)
	})
	sc.Step(`^through both proxies it shows no clear value and is masked or refused as the corpus says$`, func() error {
		for _, target := range []string{proxyHMAC, proxyNoHMAC} {
			if err := w.throughProxy(target, w.current.expect(target)); err != nil {
				return fmt.Errorf("%s proxy: %w", target, err)
			}
		}
		return nil
	})
}

func (w *world) attempt(name string) (*attempt, error) {
	attempts, _, err := loadCorpus()
	if err != nil {
		return nil, err
	}
	a := attempts[name]
	if a == nil {
		return nil, fmt.Errorf("no attempt %q in testdata/bypasses.yaml", name)
	}
	w.current = a
	return a, nil
}

// throughProxy runs the current attempt through a proxy: no clear value in
// anything returned, and the outcome the corpus names.
func (w *world) throughProxy(target, want string) error {
	a := w.current
	r, err := runAttempt(a, target)
	if err != nil {
		return err
	}
	if found := shared.leaks[target].find(r.text); len(found) > 0 {
		noteOutcome(a.Name, target, "LEAK")
		return fmt.Errorf("LEAK through the %s proxy: %s\n%s", target, strings.Join(found, "; "), r.text)
	}
	got := "masked"
	for _, o := range r.outcomes {
		if o.refusedByMasking() {
			got = "refused"
		}
	}
	noteOutcome(a.Name, target, got)
	if got != want {
		return fmt.Errorf("through the %s proxy: %s, the corpus says %s:\n%s", target, got, want, r.text)
	}
	if got == "masked" && a.Differs == "" && w.directRun != nil {
		for i, o := range r.outcomes {
			if d := w.directRun.outcomes[i]; d.code() != o.code() {
				return fmt.Errorf("through the %s proxy %q: SQLSTATE %q, directly %q (%v / %v)", target, o.sql, o.code(), d.code(), o.err, d.err)
			}
		}
	}
	w.t.Logf("%s through the %s proxy: %s", a.Name, target, got)
	return nil
}

// TestBypassCorpus checks the corpus itself (no server): at least 50
// attempts, each with a technique, statements and an outcome, each run by
// features/bypasses.feature exactly once.
func TestBypassCorpus(t *testing.T) {
	attempts, order, err := loadCorpus()
	if err != nil {
		t.Fatal(err)
	}
	if len(order) < 50 {
		t.Errorf("%d attempts, want at least 50", len(order))
	}
	feature, err := os.ReadFile(filepath.Join("features", "bypasses.feature"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	row := regexp.MustCompile(`(?m)^\s*\|\s*([a-z0-9][a-z0-9 ,()'./_-]*?)\s*\|\s*$`)
	for _, m := range row.FindAllStringSubmatch(string(feature), -1) {
		if m[1] != "attempt" {
			listed[m[1]]++
		}
	}
	for _, name := range order {
		a := attempts[name]
		if a.Technique == "" || len(a.SQL) == 0 {
			t.Errorf("%s: technique and sql are required", name)
		}
		for _, e := range []string{a.Expect, a.ExpectNoHMAC} {
			if e != "masked" && e != "refused" && (e != "" || a.Expect == "") {
				t.Errorf("%s: expect %q must be masked or refused", name, e)
			}
		}
		if listed[name] != 1 {
			t.Errorf("%s is listed %d times in features/bypasses.feature, want once", name, listed[name])
		}
		delete(listed, name)
	}
	var extra []string
	for name := range listed {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("features/bypasses.feature lists attempts the corpus does not have: %v", extra)
	}
}

// awaitEnded waits (up to 10 s) until the server sessions of pids have
// exited; their temporary objects are dropped before they leave
// pg_stat_activity.
func awaitEnded(pids []uint32) {
	if len(pids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.pg.SuperuserDSN(harness.TestDB))
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	ids := make([]int32, len(pids))
	for i, p := range pids {
		ids[i] = int32(p)
	}
	for ctx.Err() == nil {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", ids).Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
