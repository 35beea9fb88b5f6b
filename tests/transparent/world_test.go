//go:build linux

package transparent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// suiteState is shared by every scenario of a run: the pgproxy binary and one PostgreSQL
// listening on 127.0.0.2, 127.0.0.3 and ::1 at the same port.
type suiteState struct {
	bin     string
	workDir string

	mu sync.Mutex
	pg *harness.Cluster
}

func newSuiteState(t *testing.T, bin string) *suiteState {
	return &suiteState{bin: bin, workDir: t.TempDir()}
}

// sharedPG starts the shared cluster on first use.
func (s *suiteState) sharedPG() (*harness.Cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg != nil {
		return s.pg, nil
	}
	pg, err := harness.NewPostgres(harness.PGOptions{
		ListenAddr: "127.0.0.2",
		Conf:       []string{"listen_addresses = '127.0.0.2,127.0.0.3,::1'"},
	})
	if err != nil {
		return nil, err
	}
	s.pg = pg
	return pg, nil
}

func (s *suiteState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg != nil {
		_ = s.pg.Close()
		s.pg = nil
	}
}

// checkNothingLeft fails the test when a cgroup, namespace, link or pin folder of this run
// still exists after the scenarios.
func (s *suiteState) checkNothingLeft(t *testing.T) {
	if left := leftovers(); len(left) > 0 {
		t.Errorf("left behind after the scenarios: %s", strings.Join(left, ", "))
	}
}

// world is the state of one scenario.
type world struct {
	s   *suiteState
	log func(format string, args ...any)

	cleanups []func() error
	vars     map[string]string
	clusters []*harness.Cluster // every cluster the scenario may reach, shared one first
	cg       *cgroup
	nets     map[string]*netns

	agent     *agentProc
	agentEnv  map[string]string
	agentAt   placement
	agentExit int
	baseline  map[string]float64
	last      *observation
	checksums map[string]checksumReport
	loop      *loopResult
}

func newWorld(ctx context.Context, s *suiteState) *world {
	w := &world{s: s, vars: map[string]string{}, nets: map[string]*netns{}, checksums: map[string]checksumReport{}}
	w.log = func(format string, args ...any) { fmt.Fprintf(os.Stdout, "    | "+format+"\n", args...) }
	if t := godog.T(ctx); t != nil {
		w.log = t.Logf
	}
	return w
}

func (w *world) defer_(f func() error) { w.cleanups = append(w.cleanups, f) }

// cleanup runs the scenario's cleanups, newest first.
func (w *world) cleanup() error {
	var errs []error
	for i := len(w.cleanups) - 1; i >= 0; i-- {
		if err := w.cleanups[i](); err != nil {
			errs = append(errs, err)
		}
	}
	w.cleanups = nil
	return errors.Join(errs...)
}

var varRe = regexp.MustCompile(`\{([a-z0-9_]+)\}`)

// expand replaces {name} with the scenario's variables: {pg} (127.0.0.2:port of the shared
// cluster), {pg3} (127.0.0.3:port), {pg6} ([::1]:port), {pgport}, {agentport}, and those that
// steps set ({pg2}, {hostveth}, {pgveth}, ...).
func (w *world) expand(s string) (string, error) {
	var missing []string
	out := varRe.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		v, err := w.variable(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", name, err))
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q: unknown %s", s, strings.Join(missing, ", "))
	}
	return out, nil
}

func (w *world) variable(name string) (string, error) {
	if v, ok := w.vars[name]; ok {
		return v, nil
	}
	switch name {
	case "pg", "pg3", "pg6", "pgport":
		pg, err := w.s.sharedPG()
		if err != nil {
			return "", err
		}
		w.addCluster(pg)
		port := strconv.Itoa(pg.Port())
		w.vars["pg"] = net.JoinHostPort("127.0.0.2", port)
		w.vars["pg3"] = net.JoinHostPort("127.0.0.3", port)
		w.vars["pg6"] = net.JoinHostPort("::1", port)
		w.vars["pgport"] = port
		return w.vars[name], nil
	case "agentport":
		p, err := harness.FreePort("127.0.0.1")
		if err != nil {
			return "", err
		}
		w.vars[name] = strconv.Itoa(p)
		return w.vars[name], nil
	}
	return "", errors.New("not set")
}

func (w *world) addCluster(c *harness.Cluster) {
	for _, have := range w.clusters {
		if have == c {
			return
		}
	}
	w.clusters = append(w.clusters, c)
}

func initializeScenario(sc *godog.ScenarioContext, s *suiteState) {
	var w *world
	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		w = newWorld(ctx, s)
		return ctx, nil
	})
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if err != nil && w.agent != nil {
			w.log("agent output (last 80 lines):\n%s", harness.Tail(w.agent.out.String(), 80))
		}
		return ctx, w.cleanup()
	})
	registerSteps(sc, func() *world { return w })
}
