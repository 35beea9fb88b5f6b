//go:build linux

package transparent

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func registerSteps(sc *godog.ScenarioContext, W func() *world) {
	// --- set-up ---------------------------------------------------------------------------
	sc.Step(`^a child cgroup$`, func() error { return W().childCgroup() })
	sc.Step(`^a PostgreSQL listening on (\S+) as \{(\w+)\}$`, func(addr, name string) error {
		return W().extraPostgres(addr, name)
	})
	sc.Step(`^a pod network namespace joined to the host by a veth$`, func() error { return W().podNamespace() })
	sc.Step(`^a client namespace and a node namespace joined by a veth, the node joined to the host by another veth$`,
		func() error { return W().tproxyNamespaces() })

	// --- the agent ------------------------------------------------------------------------
	sc.Step(`^the agent runs for the cgroup with targets "([^"]*)"$`, func(targets string) error {
		return W().startAgentWith(map[string]string{"INTERCEPT_TARGETS": targets}, false, "")
	})
	sc.Step(`^the agent runs for the cgroup with:$`, func(tbl *godog.Table) error {
		env, err := tableEnv(tbl)
		if err != nil {
			return err
		}
		return W().startAgentWith(env, false, "")
	})
	sc.Step(`^the agent runs inside the cgroup it intercepts, with targets "([^"]*)"$`, func(targets string) error {
		return W().startAgentWith(map[string]string{"INTERCEPT_TARGETS": targets}, true, "")
	})
	sc.Step(`^the agent runs inside the cgroup it intercepts, with:$`, func(tbl *godog.Table) error {
		env, err := tableEnv(tbl)
		if err != nil {
			return err
		}
		return W().startAgentWith(env, true, "")
	})
	sc.Step(`^the agent runs in the (\w+) namespace with:$`, func(ns string, tbl *godog.Table) error {
		env, err := tableEnv(tbl)
		if err != nil {
			return err
		}
		return W().startAgentWith(env, false, ns)
	})
	sc.Step(`^the agent is restarted$`, func() error { return W().restartAgent() })
	sc.Step(`^the agent is replaced by one with (\w+)=(\S+)$`, func(k, v string) error {
		w := W()
		w.agentEnv[k] = v
		return w.restartAgent()
	})
	sc.Step(`^the agent gets SIGTERM$`, func() error {
		w := W()
		code, err := w.agent.stop()
		w.agentExit = code
		return err
	})
	sc.Step(`^the agent exited with code (\d+)$`, func(code int) error {
		if w := W(); w.agentExit != code {
			return fmt.Errorf("agent exit code %d, want %d\n%s", w.agentExit, code, harness.Tail(w.agent.out.String(), 30))
		}
		return nil
	})
	sc.Step(`^the agent metrics are noted$`, func() error { return W().noteMetrics() })

	// --- clients --------------------------------------------------------------------------
	sc.Step(`^(psql|pgx) runs (inside|outside) the cgroup against (\S+)$`, func(kind, where, target string) error {
		w := W()
		return w.client(clientRun{kind: kind, at: w.where(where == "inside", ""), target: target})
	})
	sc.Step(`^(psql|pgx) runs in the (\w+) namespace (inside|outside) the cgroup against (\S+)$`,
		func(kind, ns, where, target string) error {
			w := W()
			return w.client(clientRun{kind: kind, at: w.where(where == "inside", ns), target: target})
		})
	sc.Step(`^psql in the (\w+) namespace cannot reach (\S+)$`, func(ns, target string) error {
		w := W()
		t, err := w.expand(target)
		if err != nil {
			return err
		}
		host, port, _ := net.SplitHostPort(t)
		cmd := w.where(false, ns).command([]string{"psql", "-X", "-A", "-t", "-h", host, "-p", port,
			"-U", harness.ScramUser, "-d", harness.TestDB, "-c", "SELECT 1"},
			[]string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + harness.ScramPass, "PGCONNECT_TIMEOUT=3"})
		out, err := cmd.CombinedOutput()
		w.log("psql in the %s namespace without an agent: %v: %s", ns, err, strings.TrimSpace(string(out)))
		if err == nil {
			return fmt.Errorf("psql reached %s without the agent: %s", t, out)
		}
		return nil
	})
	sc.Step(`^pgbench -i runs (inside|outside) the cgroup against (\S+)$`, func(where, target string) error {
		w := W()
		return w.client(clientRun{kind: "pgbench-init", at: w.where(where == "inside", ""), target: target})
	})
	sc.Step(`^pgbench -S runs for (\d+) seconds with (\d+) clients (inside|outside) the cgroup against (\S+)$`,
		func(secs, clients int, where, target string) error {
			w := W()
			return w.client(clientRun{kind: "pgbench", seconds: secs, clients: clients,
				at: w.where(where == "inside", ""), target: target})
		})
	sc.Step(`^pgx reads a 10 MB result (inside|outside) the cgroup against (\S+) as "(\w+)"$`,
		func(where, target, name string) error {
			w := W()
			if err := w.client(clientRun{kind: "checksum", at: w.where(where == "inside", ""), target: target}); err != nil {
				return err
			}
			var r checksumReport
			if err := jsonLine(w.last.output, &r); err != nil {
				return err
			}
			if r.Bytes < 10<<20 {
				return fmt.Errorf("result %q: %d bytes in %d rows, want at least 10 MiB", name, r.Bytes, r.Rows)
			}
			w.checksums[name] = r
			w.log("%s: %d rows, %d bytes, sha256 %s", name, r.Rows, r.Bytes, r.SHA256)
			return nil
		})
	sc.Step(`^pgx connects in a loop inside the cgroup against (\S+) for (\d+) seconds while the agent restarts after (\d+) seconds$`,
		func(target string, secs, after int) error {
			w := W()
			t, err := w.expand(target)
			if err != nil {
				return err
			}
			w.loop, err = w.runLoop(t, secs, after)
			if err == nil {
				w.log("loop: %d attempts; %s", len(w.loop.attempts), w.loop)
			}
			return err
		})

	// --- checks ---------------------------------------------------------------------------
	sc.Step(`^the (?:session|sessions|pgbench sessions) reached PostgreSQL through the agent$`, func() error {
		return W().checkSessions(true)
	})
	sc.Step(`^the (?:session|sessions|pgbench sessions) reached PostgreSQL directly from the client$`, func() error {
		return W().checkSessions(false)
	})
	sc.Step(`^PostgreSQL saw the session come from (\S+)$`, func(addr string) error {
		w := W()
		want, err := w.expand(addr)
		if err != nil {
			return err
		}
		for _, s := range w.last.sessions {
			if s.Addr != want {
				return fmt.Errorf("session from %s:%d, want from %s", s.Addr, s.Port, want)
			}
		}
		return nil
	})
	sc.Step(`^pgx saw (\S+) as its peer address$`, func(addr string) error {
		w := W()
		want, err := w.expand(addr)
		if err != nil {
			return err
		}
		if w.last.peer == nil {
			return errors.New("no pgx report")
		}
		if got := w.last.peer.Remote; got != want {
			return fmt.Errorf("pgx RemoteAddr() (getpeername) = %s, want the dialled %s", got, want)
		}
		return nil
	})
	sc.Step(`^the server saw a client port other than pgx's own$`, func() error {
		p := W().last.peer
		if p == nil {
			return errors.New("no pgx report")
		}
		_, lp, _ := net.SplitHostPort(p.Local)
		if strconv.Itoa(p.BackendPort) == lp {
			return fmt.Errorf("server saw client port %d, the same as pgx's local %s: not redirected", p.BackendPort, p.Local)
		}
		return nil
	})
	sc.Step(`^the server saw pgx's own client port$`, func() error {
		p := W().last.peer
		if p == nil {
			return errors.New("no pgx report")
		}
		_, lp, _ := net.SplitHostPort(p.Local)
		if strconv.Itoa(p.BackendPort) != lp {
			return fmt.Errorf("server saw client port %d, pgx's local address is %s: went through something", p.BackendPort, p.Local)
		}
		return nil
	})
	sc.Step(`^the agent metric (\w+) rose by (at least )?(\d+)$`, func(name, atLeast string, n int) error {
		return W().checkMetric(name, atLeast != "", float64(n))
	})
	sc.Step(`^the agent metrics did not change$`, func() error { return W().checkMetricsUnchanged() })
	sc.Step(`^the results "(\w+)", "(\w+)" and "(\w+)" are identical$`, func(a, b, c string) error {
		w := W()
		ra, rb, rc := w.checksums[a], w.checksums[b], w.checksums[c]
		if ra.SHA256 == "" || ra.SHA256 != rb.SHA256 || ra.SHA256 != rc.SHA256 || ra.Rows != rb.Rows || ra.Rows != rc.Rows {
			return fmt.Errorf("results differ: %s=%+v %s=%+v %s=%+v", a, ra, b, rb, c, rc)
		}
		return nil
	})
	sc.Step(`^"([^"]*)" prints "([^"]*)"$`, func(command, want string) error {
		return W().commandPrints(command, want, true)
	})
	sc.Step(`^"([^"]*)" does not print "([^"]*)"$`, func(command, want string) error {
		return W().commandPrints(command, want, false)
	})
	sc.Step(`^the pin folder \{pins\} is gone$`, func() error {
		w := W()
		if _, err := os.Stat(w.vars["pins"]); !errors.Is(err, os.ErrNotExist) {
			entries, _ := os.ReadDir(w.vars["pins"])
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return fmt.Errorf("pin folder %s still exists (%v), holding %v", w.vars["pins"], err, names)
		}
		return nil
	})
	sc.Step(`^every connection before the restart went through the agent$`, func() error {
		return W().loopPhase(0)
	})
	sc.Step(`^every connection once the new agent was ready went through the agent$`, func() error {
		return W().loopPhase(2)
	})
	sc.Step(`^no connection failed during the gap$`, func() error {
		l := W().loop
		if l.failed[1] > 0 {
			return fmt.Errorf("%d connections failed during the gap: %v (%s)", l.failed[1], l.failures, l)
		}
		return nil
	})
	sc.Step(`^connections during the gap went directly or through an agent$`, func() error {
		l := W().loop
		if l.viaAgent[1]+l.direct[1]+l.failed[1] == 0 {
			return fmt.Errorf("no attempt fell into the gap (%s)", l)
		}
		return nil
	})
}

// tableEnv reads a two-column table of NAME | value rows.
func tableEnv(tbl *godog.Table) (map[string]string, error) {
	env := map[string]string{}
	for _, row := range tbl.Rows {
		if len(row.Cells) != 2 {
			return nil, errors.New("agent table rows must be NAME | value")
		}
		env[row.Cells[0].Value] = row.Cells[1].Value
	}
	return env, nil
}

func jsonLine(out string, v any) error {
	if err := jsonUnmarshal(firstLine(out), v); err != nil {
		return fmt.Errorf("helper output %q: %w", out, err)
	}
	return nil
}

// where returns the placement for a client: inside the scenario's cgroup or not, in a
// namespace of the scenario or the host's.
func (w *world) where(inside bool, ns string) placement {
	p := placement{}
	if inside {
		p.cg = w.cg
	}
	if ns != "" {
		if n, ok := w.nets[ns]; ok {
			p.netns = n.name
		} else {
			p.netns = "missing-namespace-" + ns
		}
	}
	return p
}

func (w *world) client(r clientRun) error {
	if r.at.cg == nil && strings.Contains(r.at.netns, "missing-") {
		return fmt.Errorf("unknown namespace %s", r.at.netns)
	}
	t, err := w.expand(r.target)
	if err != nil {
		return err
	}
	r.target = t
	obs, err := w.runClient(r)
	if err != nil {
		return err
	}
	w.log("%s (pid %d) against %s: sessions %+v peer %+v", r.kind, obs.pid, t, obs.sessions, obs.peer)
	return nil
}

func (w *world) childCgroup() error {
	cg, err := newCgroup()
	if err != nil {
		return err
	}
	w.cg = cg
	w.vars["cgroup"] = cg.path
	w.defer_(cg.close)
	return nil
}

// extraPostgres starts a cluster of the scenario's own on addr (expanded) and names its
// host:port {name}.
func (w *world) extraPostgres(addr, name string) error {
	a, err := w.expand(addr)
	if err != nil {
		return err
	}
	pg, err := harness.NewPostgres(harness.PGOptions{
		ListenAddr: a,
		HBA:        []string{"host all " + harness.ScramUser + " 10.0.0.0/8 scram-sha-256"},
	})
	if err != nil {
		return err
	}
	w.defer_(pg.Close)
	w.addCluster(pg)
	w.vars[name] = pg.Addr()
	return nil
}

// subnet returns the next 10.231.N.0/24 of this run (one per veth pair).
func (w *world) nextSubnet() string {
	n := int(nameSeq.Add(1)) % 250
	return fmt.Sprintf("10.231.%d", n)
}

// podNamespace makes a "pod": a network namespace whose veth peer is in the host namespace.
// Sets {hostveth} (host side address) and {podveth} (the pod's address).
func (w *world) podNamespace() error {
	ns, err := newNetns()
	if err != nil {
		return err
	}
	w.defer_(ns.close)
	w.nets["pod"] = ns
	host, pod := vethName("h"), vethName("p")
	sub := w.nextSubnet()
	steps := [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", pod, "netns", ns.name},
		{"addr", "add", sub + ".1/24", "dev", host},
		{"link", "set", host, "up"},
	}
	for _, s := range steps {
		if _, err := run("ip", s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"addr", "add", sub + ".2/24", "dev", pod},
		{"link", "set", pod, "up"},
		{"route", "add", "default", "via", sub + ".1"},
	} {
		if err := ns.ip(s...); err != nil {
			return err
		}
	}
	w.vars["hostveth"], w.vars["podveth"] = sub+".1", sub+".2"
	return nil
}

// tproxyNamespaces makes a client namespace and a node namespace joined by a veth, and
// joins the node to the host namespace by a second veth. The client routes the host link's
// subnet via the node, which does not forward: only the agent can connect it to the host.
// Sets {clientaddr}, {nodein} (the node's interface toward the client), {nodeaddr} (the
// node's address toward the host) and {hostlink} (the host's address toward the node).
func (w *world) tproxyNamespaces() error {
	client, err := newNetns()
	if err != nil {
		return err
	}
	w.defer_(client.close)
	node, err := newNetns()
	if err != nil {
		return err
	}
	w.defer_(node.close)
	w.nets["client"], w.nets["node"] = client, node
	cIf, nIn, nOut, hIf := vethName("c"), vethName("n"), vethName("o"), vethName("h")
	inner, outer := w.nextSubnet(), w.nextSubnet()
	if err := client.ip("link", "add", cIf, "type", "veth", "peer", "name", nIn, "netns", node.name); err != nil {
		return err
	}
	if _, err := run("ip", "link", "add", hIf, "type", "veth", "peer", "name", nOut, "netns", node.name); err != nil {
		return err
	}
	for _, s := range [][]string{{"addr", "add", outer + ".1/24", "dev", hIf}, {"link", "set", hIf, "up"}} {
		if _, err := run("ip", s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"addr", "add", inner + ".1/24", "dev", cIf}, {"link", "set", cIf, "up"},
		{"route", "add", outer + ".0/24", "via", inner + ".2"},
	} {
		if err := client.ip(s...); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"addr", "add", inner + ".2/24", "dev", nIn}, {"link", "set", nIn, "up"},
		{"addr", "add", outer + ".2/24", "dev", nOut}, {"link", "set", nOut, "up"},
	} {
		if err := node.ip(s...); err != nil {
			return err
		}
	}
	w.vars["clientaddr"], w.vars["nodein"], w.vars["nodens"] = inner+".1", nIn, node.name
	w.vars["nodeaddr"], w.vars["hostlink"] = outer+".2", outer+".1"
	return nil
}

// startAgentWith starts the agent with the defaults of a connect-mode test (the scenario's
// cgroup, a free listen port on 127.0.0.1, a free health port) overridden by env (expanded).
// inCgroup starts the agent itself inside the intercepted cgroup; ns starts it in a network
// namespace of the scenario.
func (w *world) startAgentWith(env map[string]string, inCgroup bool, ns string) error {
	healthPort, err := harness.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	full := map[string]string{
		"AGENT_LISTEN_ADDR": "127.0.0.1:{agentport}",
		"HEALTH_CHECK_ADDR": "127.0.0.1:" + strconv.Itoa(healthPort),
	}
	if w.cg != nil {
		full["INTERCEPT_CGROUP"] = w.cg.path
	}
	if ns != "" {
		// Health and metrics must be reachable from the test in the host namespace.
		full["HEALTH_CHECK_ADDR"] = "{nodeaddr}:" + strconv.Itoa(healthPort)
	}
	for k, v := range env {
		full[k] = v
	}
	if strings.Contains(full["BPF_PIN_PATH"], "{pins}") {
		w.vars["pins"] = filepath.Join(bpffs, uniqueName())
		pins := w.vars["pins"]
		w.defer_(func() error { return os.RemoveAll(pins) })
	}
	for k, v := range full {
		if full[k], err = w.expand(v); err != nil {
			return err
		}
	}
	at := placement{}
	if inCgroup {
		at.cg = w.cg
	}
	if ns != "" {
		n, ok := w.nets[ns]
		if !ok {
			return fmt.Errorf("no %s namespace in this scenario", ns)
		}
		at.netns = n.name
	}
	w.agentEnv, w.agentAt = full, at
	w.defer_(func() error {
		if w.agent != nil && w.agent.running() {
			if code, err := w.agent.stop(); err != nil || code != 0 {
				return fmt.Errorf("agent stop at cleanup: exit code %d, %v\n%s", code, err, harness.Tail(w.agent.out.String(), 30))
			}
		}
		return nil
	})
	return w.launchAgent()
}

func (w *world) launchAgent() error {
	a, err := startAgent(w.s.bin, w.s.workDir, w.agentEnv, w.agentAt)
	if err != nil {
		return err
	}
	w.agent = a
	return w.noteMetrics()
}

// restartAgent stops the agent with SIGTERM and starts it again with the same settings.
func (w *world) restartAgent() error {
	if w.agent == nil {
		return errors.New("no agent to restart")
	}
	if code, err := w.agent.stop(); err != nil || code != 0 {
		return fmt.Errorf("agent stop: exit code %d, %v\n%s", code, err, harness.Tail(w.agent.out.String(), 30))
	}
	return w.launchAgent()
}

func (w *world) noteMetrics() error {
	m, err := w.agent.metrics()
	if err != nil {
		return err
	}
	w.baseline = m
	return nil
}

func (w *world) checkMetric(name string, atLeast bool, n float64) error {
	m, err := w.agent.metrics()
	if err != nil {
		return err
	}
	now, ok := m[name]
	if !ok {
		return fmt.Errorf("metric %s not exported", name)
	}
	d := now - w.baseline[name]
	if (atLeast && d < n) || (!atLeast && math.Abs(d-n) > 0.5) {
		return fmt.Errorf("%s rose by %v, want %s%v (all changes: %s)", name, d,
			map[bool]string{true: "at least ", false: ""}[atLeast], n, w.metricChanges(m))
	}
	return nil
}

// metricChanges lists the pgproxy_* samples that differ from the baseline.
func (w *world) metricChanges(now map[string]float64) string {
	var out []string
	for name, v := range now {
		if strings.HasPrefix(name, "pgproxy_") && v != w.baseline[name] {
			out = append(out, fmt.Sprintf("%s +%v", name, v-w.baseline[name]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// watchedMetrics are the counters that move when a connection is intercepted.
var watchedMetrics = []string{
	"pgproxy_client_connections_total",
	"pgproxy_bpf_connect4_redirects_total",
	"pgproxy_bpf_connect6_redirects_total",
	"pgproxy_bpf_sockops_established_total",
	"pgproxy_bpf_lookups_answered_total",
}

func (w *world) checkMetricsUnchanged() error {
	m, err := w.agent.metrics()
	if err != nil {
		return err
	}
	var changed []string
	for _, name := range watchedMetrics {
		if _, ok := m[name]; !ok {
			return fmt.Errorf("metric %s not exported", name)
		}
		if m[name] != w.baseline[name] {
			changed = append(changed, fmt.Sprintf("%s %v → %v", name, w.baseline[name], m[name]))
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("agent metrics changed: %s", strings.Join(changed, ", "))
	}
	return nil
}

// checkSessions checks that pg_stat_activity showed the last client's sessions, and that
// the socket at their client address:port belonged to the agent (viaAgent) or to the client
// process itself.
func (w *world) checkSessions(viaAgent bool) error {
	o := w.last
	if o == nil {
		return errors.New("no client ran")
	}
	if len(o.sessions) == 0 {
		return fmt.Errorf("pg_stat_activity never showed a session of %s (pid %d); output:\n%s", o.client, o.pid, o.output)
	}
	for _, s := range o.sessions {
		if viaAgent && (!s.ByAgent || s.ByClient) {
			return fmt.Errorf("%s session from %s:%d: held by agent %v, by the client %v; want the agent's socket (sessions %+v)",
				o.client, s.Addr, s.Port, s.ByAgent, s.ByClient, o.sessions)
		}
		if !viaAgent && (!s.ByClient || s.ByAgent) {
			return fmt.Errorf("%s session from %s:%d: held by agent %v, by the client %v; want the client's own socket (sessions %+v)",
				o.client, s.Addr, s.Port, s.ByAgent, s.ByClient, o.sessions)
		}
	}
	return nil
}

// commandPrints runs command (expanded, split on spaces) and checks its output.
func (w *world) commandPrints(command, want string, should bool) error {
	c, err := w.expand(command)
	if err != nil {
		return err
	}
	want, err = w.expand(want)
	if err != nil {
		return err
	}
	f := strings.Fields(c)
	out, err := run(f[0], f[1:]...)
	w.log("$ %s\n%s", c, strings.TrimRight(out, "\n"))
	if err != nil {
		return err
	}
	if strings.Contains(out, want) != should {
		return fmt.Errorf("%q printed (want %q present=%v):\n%s", c, want, should, out)
	}
	return nil
}

func (w *world) loopPhase(p int) error {
	l := w.loop
	if l == nil {
		return errors.New("no loop ran")
	}
	total := l.viaAgent[p] + l.direct[p] + l.failed[p]
	if total == 0 {
		return fmt.Errorf("no attempts in phase %d (%s)", p, l)
	}
	if l.direct[p] > 0 || l.failed[p] > 0 {
		return fmt.Errorf("phase %d: %d direct, %d failed of %d (%s; failures %v)", p, l.direct[p], l.failed[p], total, l, l.failures)
	}
	return nil
}
