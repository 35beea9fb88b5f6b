package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// NodeResult is the JSON printed by tests/node/client.js.
type NodeResult struct {
	OK      bool `json:"ok"`
	Results []struct {
		Command  string           `json:"command"`
		RowCount int              `json:"rowCount"`
		Fields   []string         `json:"fields"`
		Rows     []map[string]any `json:"rows"`
	} `json:"results"`
	Error *struct {
		Message  string `json:"message"`
		Code     string `json:"code"`
		Severity string `json:"severity"`
	} `json:"error"`
}

// NodeQuery runs tests/node/client.js (node-postgres) against dsn. With sql empty the script
// runs its built-in simple and parameterised queries; with params it uses the extended
// protocol. A failed query is reported in the result (OK false), not as a test failure.
func NodeQuery(t testing.TB, dsn, sql string, params ...any) NodeResult {
	t.Helper()
	Require(t, "node")
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "tests", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg")); err != nil {
		Unavailable(t, "tests/node/node_modules/pg missing")
	}
	args := []string{filepath.Join(dir, "client.js"), dsn}
	if sql != "" {
		args = append(args, sql)
		if len(params) > 0 {
			p, err := json.Marshal(params)
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, string(p))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res NodeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node client: %v, %v\nstdout: %s\nstderr: %s", runErr, err, out, stderr.String())
	}
	return res
}

// String renders the result for test messages.
func (r NodeResult) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}
