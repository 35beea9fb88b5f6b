// Package grafana_test checks deploy/grafana/pgproxy-dashboard.json: its
// structure offline (valid JSON without duplicate keys, unique panel ids, a
// non-overlapping layout, a Prometheus datasource reference on every panel
// and target), and its PromQL against real binaries: every metric a target
// names must be exposed on /metrics of a running pgproxy (explicit mode,
// with PostgreSQL behind it and some traffic) or, for the pgproxy_bpf_*
// counters, of a running pgproxy agent (needs root and eBPF), with the
// labels and in the form (rate of a counter, le kept for buckets) its type
// calls for. Every pgproxy_* family those binaries expose must also be on
// the dashboard.
package grafana_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Run(m)) }

const dashboardFile = "pgproxy-dashboard.json"

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's panels
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
}

// queryText is a variable's query: a string, or an object with a query
// field (the form newer Grafana versions save).
func (v variable) queryText() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &o); err != nil {
		return "", fmt.Errorf("variable %s: query is neither a string nor {query: ...}: %v", v.Name, err)
	}
	return o.Query, nil
}

// promDatasource is the reference every panel and target must carry: the
// dashboard's datasource variable.
var promDatasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where string // panel id, title and refId, or variable name
	expr  string
}

func loadDashboard(t *testing.T) (*dashboard, []byte) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not a dashboard JSON: %v", dashboardFile, err)
	}
	return &d, data
}

// allPanels returns the panels, rows' nested panels included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// targets returns every panel target's expression.
func (d *dashboard) targets() []query {
	var out []query
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	return out
}

// variableQueries returns the query variables' label_values queries.
func (d *dashboard) variableQueries(t *testing.T) []query {
	var out []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := v.queryText()
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, query{"variable " + v.Name, q})
	}
	return out
}

// TestDashboardStructure checks the dashboard without running anything.
func TestDashboardStructure(t *testing.T) {
	d, data := loadDashboard(t)
	for _, p := range structureProblems(d, data) {
		t.Error(p)
	}
	var names []string
	for _, q := range d.targets() {
		n, err := metricNames(q.expr)
		if err != nil {
			continue // reported by structureProblems
		}
		names = append(names, n...)
	}
	sort.Strings(names)
	names = slices.Compact(names)
	t.Logf("%d panels, %d targets, %d metric names", len(d.allPanels()), len(d.targets()), len(names))
}

// structureProblems lists what is wrong with the dashboard's structure.
func structureProblems(d *dashboard, data []byte) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if err := duplicateKeys(data); err != nil {
		add("%v", err)
	}
	if d.Title == "" || d.UID == "" {
		add("dashboard needs a title and a uid (title %q, uid %q)", d.Title, d.UID)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		add("schemaVersion %d: want 36-41 (Grafana 9.4 to 11)", d.SchemaVersion)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		add(`want a variable "datasource" of type datasource with query "prometheus", have %+v`, v)
	}
	for _, name := range []string{"job", "instance"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" || v.Datasource == nil || *v.Datasource != promDatasource {
			add("want a query variable %q on datasource %+v, have %+v", name, promDatasource, v)
		}
	}

	ids := map[int]string{}
	type rect struct {
		id         int
		x, y, w, h int
	}
	var placed []rect
	for _, p := range d.allPanels() {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			add("%s: id must be a positive integer", name)
		} else if other, dup := ids[p.ID]; dup {
			add("%s: id already used by %s", name, other)
		}
		ids[p.ID] = name
		if p.Type == "" || p.Title == "" {
			add("%s: needs a type and a title", name)
		}
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			add("%s: gridPos %+v is outside the 24-column grid", name, g)
		}
		for _, r := range placed {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				add("%s: gridPos %+v overlaps panel %d", name, g, r.id)
			}
		}
		placed = append(placed, rect{p.ID, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				add("%s: a row has no targets", name)
			}
			continue
		}
		if p.Datasource == nil || *p.Datasource != promDatasource {
			add("%s: datasource %+v, want %+v", name, p.Datasource, promDatasource)
		}
		if len(p.Targets) == 0 {
			add("%s: no targets", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s target %s", name, tg.RefID)
			if tg.RefID == "" || refs[tg.RefID] {
				add("%s: refId empty or repeated", where)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || *tg.Datasource != promDatasource {
				add("%s: datasource %+v, want %+v", where, tg.Datasource, promDatasource)
			}
			names, err := metricNames(tg.Expr)
			if err != nil {
				add("%s: %q: %v", where, tg.Expr, err)
				continue
			}
			if len(names) == 0 {
				add("%s: %q selects no metric", where, tg.Expr)
			}
			agent := 0
			for _, n := range names {
				if isAgentMetric(n) {
					agent++
				}
			}
			if agent > 0 && agent < len(names) {
				add("%s: %q mixes agent-only (pgproxy_bpf_*) and other metrics", where, tg.Expr)
			}
		}
	}
	return problems
}

// isAgentMetric reports whether only `pgproxy agent` exposes a metric: the
// eBPF counters, read from the programs' maps at scrape time.
func isAgentMetric(name string) bool { return strings.HasPrefix(name, "pgproxy_bpf_") }

// duplicateKeys reports the first JSON object with a key twice, which
// encoding/json would silently resolve to the last value.
func duplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("%s: key %q appears twice", path, k)
				}
				seen[k] = true
				if err := walk(path + "." + k); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk("$"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the dashboard object")
	}
	return nil
}

// TestStructureChecksFail proves the structure checks can fail.
func TestStructureChecksFail(t *testing.T) {
	_, good := loadDashboard(t)
	if p := structureProblems(mustDecode(t, good), good); len(p) > 0 {
		t.Fatalf("the real dashboard has problems: %v", p)
	}
	cases := []struct{ name, old, new, want string }{
		{"duplicate key", `"uid": "pgproxy-overview",`, `"uid": "pgproxy-overview", "uid": "x",`, `key "uid" appears twice`},
		{"repeated panel id", `"id": 3,`, `"id": 2,`, "id already used by panel 2"},
		{"panel without datasource", `"datasource": {
        "type": "prometheus",
        "uid": "${datasource}"
      },
      "fieldConfig"`, `"fieldConfig"`, "datasource <nil>"},
		{"target on another datasource", `"datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          },
          "refId": "A",`, `"datasource": {"type": "loki", "uid": "x"},
          "refId": "A",`, "datasource &{Type:loki UID:x}"},
		{"expression that does not parse", `"expr": "sum(pgproxy_client_connections_active{`, `"expr": "sum((pgproxy_client_connections_active{`, "parse error"},
		{"overlapping panels", `"w": 4,
        "x": 4,`, `"w": 4,
        "x": 2,`, "overlaps panel 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(c.old)) {
				t.Fatalf("the dashboard no longer contains %q", c.old)
			}
			bad := bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
			var d dashboard
			if err := json.Unmarshal(bad, &d); err != nil {
				t.Fatalf("broken copy does not decode: %v", err)
			}
			problems := structureProblems(&d, bad)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Errorf("want a problem containing %q, have %q", c.want, problems)
			}
		})
	}
}

func mustDecode(t *testing.T, data []byte) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// TestKustomization checks deploy/grafana/kustomization.yaml: it generates
// one ConfigMap from the dashboard file, labelled for Grafana's dashboard
// sidecar, with a stable name.
func TestKustomization(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion       string `json:"apiVersion"`
		Kind             string `json:"kind"`
		Namespace        string `json:"namespace"`
		GeneratorOptions struct {
			DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
			Labels                map[string]string `json:"labels"`
		} `json:"generatorOptions"`
		ConfigMapGenerator []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("apiVersion/kind %s/%s", k.APIVersion, k.Kind)
	}
	if k.Namespace == "" {
		t.Error("no namespace: the ConfigMap must land where Grafana's sidecar looks")
	}
	if !k.GeneratorOptions.DisableNameSuffixHash {
		t.Error("disableNameSuffixHash must be true: a hashed name leaves a stale dashboard ConfigMap behind on every change")
	}
	if k.GeneratorOptions.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: want grafana_dashboard: \"1\" (the sidecar's default)", k.GeneratorOptions.Labels)
	}
	if len(k.ConfigMapGenerator) != 1 || !slices.Equal(k.ConfigMapGenerator[0].Files, []string{dashboardFile}) {
		t.Errorf("configMapGenerator %+v: want one ConfigMap from %s", k.ConfigMapGenerator, dashboardFile)
	}
	// kubectl apply (client side) keeps the whole object in an annotation
	// limited to 256 KiB.
	if fi, err := os.Stat(dashboardFile); err != nil {
		t.Error(err)
	} else if fi.Size() > 200<<10 {
		t.Errorf("%s is %d bytes: too large for `kubectl apply` of its ConfigMap", dashboardFile, fi.Size())
	}
}
