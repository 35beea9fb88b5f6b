package generator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/masking"
)

const hmacKey = "generator-test-key-0123456789abcdef"

var setup struct {
	once sync.Once
	pg   *harness.Cluster
	ds   *dataset
	err  error
}

// world returns the shared cluster with the labelled data loaded.
func world(t *testing.T) (*harness.Cluster, *dataset) {
	t.Helper()
	harness.Require(t, "initdb", "postgres")
	pg := harness.SharedPostgres(t)
	setup.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		setup.pg = pg
		setup.ds, setup.err = load(ctx, pg.SuperuserDSN(harness.TestDB))
	})
	if setup.err != nil {
		t.Fatalf("loading the labelled data: %v", setup.err)
	}
	return setup.pg, setup.ds
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs the built pgproxy in dir with exactly env (plus PATH, HOME and
// GOCOVERDIR).
func run(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	bin := harness.BuildProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	for _, k := range []string{"PATH", "HOME", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s %v: %v", bin, args, err)
	}
	return r
}

func baseEnv(pg *harness.Cluster, out string) map[string]string {
	return map[string]string{
		"PG_BACKEND_URL":      pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
		"MASKING_CONFIG_PATH": out,
		"MASKING_HMAC_KEY":    hmacKey,
	}
}

// generated is one successful run's file, parsed.
type generated struct {
	res  result
	data []byte
	cfg  *masking.Config
}

var first struct {
	once sync.Once
	dir  string // removed by TestMain
	g    generated
	err  error
}

// generateOnce runs `pgproxy generate-config` over the data once for the
// tests that judge its output.
func generateOnce(t *testing.T) generated {
	t.Helper()
	pg, _ := world(t)
	first.once.Do(func() {
		dir, err := os.MkdirTemp("", "generator-")
		if err != nil {
			first.err = err
			return
		}
		first.dir = dir
		out := filepath.Join(dir, "masking_config.yaml")
		r := run(t, dir, baseEnv(pg, out), "generate-config")
		if r.code != 0 {
			first.err = fmt.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			return
		}
		data, err := os.ReadFile(out)
		if err != nil {
			first.err = err
			return
		}
		cfg, err := masking.Parse(out, data, []byte(hmacKey))
		if err != nil {
			first.err = fmt.Errorf("the file does not parse: %v\n%s", err, data)
			return
		}
		first.g = generated{res: r, data: data, cfg: cfg}
	})
	if first.err != nil {
		t.Fatalf("generate-config: %v", first.err)
	}
	return first.g
}

// TestPrecisionRecall judges the generated file against the labels.
func TestPrecisionRecall(t *testing.T) {
	g := generateOnce(t)
	t.Logf("generate-config took %.1fs; stdout: %s", g.res.took.Seconds(), strings.TrimSpace(g.res.stdout))
	want := labels()
	predicted := map[string]bool{}
	for _, tb := range g.cfg.Tables {
		if tb.Schema != "public" {
			t.Errorf("table %s.%s outside the schema scanned", tb.Schema, tb.Name)
		}
		for _, c := range tb.Columns {
			key := tb.Name + "." + c.Name
			if _, ok := want[key]; !ok {
				t.Errorf("%s is masked but is not a labelled column", key)
			}
			predicted[key] = true
		}
	}
	var tp, fp, fn, positives int
	var fps, fns []string
	for key, sensitive := range want {
		if sensitive {
			positives++
		}
		switch {
		case sensitive && predicted[key]:
			tp++
		case !sensitive && predicted[key]:
			fp++
			fps = append(fps, key)
		case sensitive && !predicted[key]:
			fn++
			fns = append(fns, key)
		}
	}
	sort.Strings(fps)
	sort.Strings(fns)
	precision := float64(tp) / float64(tp+fp)
	recall := float64(tp) / float64(tp+fn)
	t.Logf("%d labelled columns (%d sensitive) in %d tables: %d masked, precision %.3f (%d/%d), recall %.3f (%d/%d)",
		len(want), positives, len(tables), len(predicted), precision, tp, tp+fp, recall, tp, tp+fn)
	if len(fps) > 0 {
		t.Logf("false positives: %s", strings.Join(fps, ", "))
	}
	if len(fns) > 0 {
		t.Logf("false negatives: %s", strings.Join(fns, ", "))
	}
	if len(want) < 30 {
		t.Fatalf("only %d labelled columns", len(want))
	}
	if precision < 0.9 || recall < 0.9 {
		t.Errorf("precision %.3f, recall %.3f: both must be at least 0.9\n%s", precision, recall, g.data)
	}
}

// TestFile checks the file's form: the header, one comment with the
// confidence and the evidence above every column, the masks each kind
// gets, partitions covered by their parent, the unreadable table listed
// as not scanned.
func TestFile(t *testing.T) {
	g := generateOnce(t)
	text := string(g.data)
	for _, want := range []string{"version: \"1.0\"\n", "default_schema: public\n", "unknown_table_behavior: passthrough\n", "tables:\n",
		"# Tables not scanned:\n#   public.vault: permission denied"} {
		if !strings.Contains(text, want) {
			t.Errorf("the file lacks %q", want)
		}
	}
	lines := strings.Split(text, "\n")
	comment := regexp.MustCompile(`^ +# (high|medium), [a-zA-Z' ]+: .*(values|not sampled).*; name: (strong|weak|no signal)`)
	entries := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "      - name: ") {
			entries++
			if !comment.MatchString(lines[i-1]) {
				t.Errorf("line %d %q: the line above is not its evidence: %q", i+1, l, lines[i-1])
			}
		}
	}
	if entries == 0 {
		t.Fatal("no column entry")
	}
	masks := map[string]masking.Column{}
	for _, tb := range g.cfg.Tables {
		for _, c := range tb.Columns {
			masks[tb.Name+"."+c.Name] = c
		}
	}
	for key, want := range map[string]masking.MaskType{
		"customers.email": masking.Email, "customers.first_name": masking.Partial, "customers.date_of_birth": masking.Null,
		"customers.id_number": masking.HMAC, "payments.card_number": masking.HMAC, "payments.iban": masking.HMAC,
		"employees.ssn": masking.HMAC, "employees.salary": masking.Null, "sessions.token": masking.Full,
		"sessions.ip_address": masking.Null, "audit_logs.api_key": masking.Full,
	} {
		if c, ok := masks[key]; ok && c.Mask != want {
			t.Errorf("%s: mask %s, want %s", key, c.Mask, want)
		}
	}
	if c := masks["employees.full_name"]; c.Mask == masking.Partial && c.Visible != 2 {
		t.Errorf("employees.full_name: visible_chars %d, want 2", c.Visible)
	}
	if g.cfg.Table("public", "events") == nil {
		t.Error("the partitioned table events is not in the file")
	}
	for _, part := range []string{"events_2024", "events_2025", "vault"} {
		if g.cfg.Table("public", part) != nil {
			t.Errorf("%s is in the file", part)
		}
	}
	if strings.Contains(text, "events_2024") || strings.Contains(g.res.stderr, "events_2024") {
		t.Error("a partition was scanned on its own")
	}
	if !strings.Contains(text, "#   public.products: ") || !strings.Contains(text, "# Tables with no column to mask:") {
		t.Error("products (nothing to mask) is not listed in the closing comments")
	}
}

// TestProgressLines: without a terminal, one line per table on stderr,
// the unreadable table's as a warning; the big table is sampled with
// TABLESAMPLE, the others with LIMIT.
func TestProgressLines(t *testing.T) {
	g := generateOnce(t)
	t.Logf("stderr:\n%s", g.res.stderr)
	all := append([]string{"vault"}, func() []string {
		var n []string
		for _, tb := range tables {
			n = append(n, tb.name)
		}
		return n
	}()...)
	line := regexp.MustCompile(`(?m)^\[(\d+)/(\d+)\] (warning: )?public\.([A-Za-z_0-9]+)[: ].*$`)
	got := line.FindAllStringSubmatch(g.res.stderr, -1)
	if len(got) != len(all) {
		t.Fatalf("%d progress lines for %d tables", len(got), len(all))
	}
	seen := map[string]string{}
	for i, m := range got {
		if m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(len(all)) {
			t.Errorf("line %q: want [%d/%d]", m[0], i+1, len(all))
		}
		seen[m[4]] = m[0]
	}
	for _, name := range all {
		if seen[name] == "" {
			t.Errorf("no progress line for %s", name)
		}
	}
	if l := seen["vault"]; !strings.Contains(l, "warning: public.vault skipped: permission denied") {
		t.Errorf("vault: %q", l)
	}
	if l := seen["audit_logs"]; !strings.Contains(l, "TABLESAMPLE SYSTEM") || !strings.Contains(l, "1000 rows sampled") {
		t.Errorf("audit_logs (20000 rows): %q", l)
	}
	if l := seen["customers"]; !strings.Contains(l, "300 rows sampled (LIMIT)") {
		t.Errorf("customers: %q", l)
	}
	if strings.Contains(g.res.stderr, "\x1b[") || strings.Contains(g.res.stderr, "\r") {
		t.Error("terminal control characters on a pipe")
	}
}

// TestNoSampleValue: no value of a sensitive or trap column appears in
// stdout, stderr or the file.
func TestNoSampleValue(t *testing.T) {
	g := generateOnce(t)
	_, ds := world(t)
	checked := 0
	for _, v := range ds.secretValues {
		if len(v) < 4 {
			continue
		}
		checked++
		for where, s := range map[string]string{"stdout": g.res.stdout, "stderr": g.res.stderr, "the file": string(g.data)} {
			if strings.Contains(s, v) {
				t.Errorf("%s shows the sampled value %q", where, v)
			}
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d values checked", checked)
	}
	t.Logf("%d values checked against stdout, stderr and the file", checked)
}

// TestProxyLoadsFile: the proxy starts with masking on and the generated
// file (every mask fits its column's type), and masks through it.
func TestProxyLoadsFile(t *testing.T) {
	g := generateOnce(t)
	pg, _ := world(t)
	path := filepath.Join(t.TempDir(), "masking.yaml")
	if err := os.WriteFile(path, g.data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.StartProxy(t, map[string]string{
		"PG_BACKEND_URL":      pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB),
		"MASKING_ENABLED":     "true",
		"MASKING_CONFIG_PATH": path,
		"MASKING_HMAC_KEY":    hmacKey,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""))
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	defer conn.Close(context.Background())
	var email, idNumber string
	var dob *time.Time
	if err := conn.QueryRow(ctx, "SELECT email, id_number, date_of_birth FROM customers WHERE email IS NOT NULL ORDER BY id LIMIT 1").
		Scan(&email, &idNumber, &dob); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	if !strings.Contains(email, "***@") || dob != nil || !regexp.MustCompile(`^[0-9a-f]{13}$`).MatchString(idNumber) {
		t.Errorf("through the proxy: email %q, id_number %q, date_of_birth %v", email, idNumber, dob)
	}
}

// TestRefusesOverwrite: an existing file is kept unless --force.
func TestRefusesOverwrite(t *testing.T) {
	pg, _ := world(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "masking_config.yaml")
	if err := os.WriteFile(out, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, baseEnv(pg, out), "generate-config")
	if r.code != 2 || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("without --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "# mine\n" {
		t.Errorf("the file was changed: %q", b)
	}
	r = run(t, dir, baseEnv(pg, out), "generate-config", "--force")
	if r.code != 0 {
		t.Fatalf("--force: exit %d, stderr %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, generateOnce(t).data) {
		t.Errorf("--force wrote another file than the first run:\n%s", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestGeneratorMode: `pgproxy` with CONFIG_GENERATOR_MODE=true writes the
// same file as the subcommand (the output is deterministic), and refuses
// to overwrite it alike.
func TestGeneratorMode(t *testing.T) {
	pg, _ := world(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "generated.yaml")
	env := baseEnv(pg, out)
	env["CONFIG_GENERATOR_MODE"] = "true"
	r := run(t, dir, env)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, generateOnce(t).data) {
		t.Errorf("CONFIG_GENERATOR_MODE=true wrote another file than generate-config")
	}
	if !strings.Contains(r.stdout, "wrote "+out) {
		t.Errorf("stdout %q", r.stdout)
	}
	if r = run(t, dir, env); r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second run: exit %d, %q", r.code, r.stderr)
	}
	if r = run(t, dir, env, "--force"); r.code != 0 {
		t.Errorf("second run with --force: exit %d, %q", r.code, r.stderr)
	}
	// .env works too, and with the mode off pgproxy is the proxy again
	// (it fails here on LISTEN_ADDR, not as the generator).
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("CONFIG_GENERATOR_MODE=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	delete(env, "CONFIG_GENERATOR_MODE")
	if r = run(t, dir, env, "--force"); r.code != 0 {
		t.Errorf("CONFIG_GENERATOR_MODE in .env: exit %d, %q", r.code, r.stderr)
	}
}

// TestGeneratorErrors: errors a user can act on, without the password.
func TestGeneratorErrors(t *testing.T) {
	pg, _ := world(t)
	port, err := harness.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"cannot connect", map[string]string{"PG_BACKEND_URL": fmt.Sprintf("postgres://scram_user:s3cr3t-pw@127.0.0.1:%d/testdb?sslmode=disable", port)},
			nil, 1, "cannot connect to postgres://scram_user@127.0.0.1:"},
		{"wrong password", map[string]string{"PG_BACKEND_URL": strings.Replace(pg.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB), harness.ScramPass, "s3cr3t-pw", 1)},
			nil, 1, "cannot connect"},
		{"schema not found", map[string]string{"CONFIG_GENERATOR_SCHEMAS": "public,nope"}, nil, 1,
			`schema "nope" not found in the database (its schemas: empty_schema, public)`},
		{"no tables", map[string]string{"CONFIG_GENERATOR_SCHEMAS": "empty_schema"}, nil, 1, "no ordinary or partitioned table to scan in schema empty_schema"},
		{"all with others", map[string]string{"CONFIG_GENERATOR_SCHEMAS": "all,public"}, nil, 2, "CONFIG_GENERATOR_SCHEMAS="},
		{"no user", map[string]string{"PG_BACKEND_URL": pg.BackendURL(harness.TestDB)}, nil, 2, "PG_BACKEND_URL needs a user and password"},
		{"one row", nil, []string{"--sample-rows", "1"}, 2, "--sample-rows=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.yaml")
			env := baseEnv(pg, out)
			for k, v := range tc.env {
				env[k] = v
			}
			r := run(t, dir, env, append([]string{"generate-config"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr+r.stdout, "s3cr3t-pw") {
				t.Errorf("the password is printed: %q", r.stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a file was written")
			}
		})
	}
	// all: every non-system schema (public and the empty one).
	dir := t.TempDir()
	env := baseEnv(pg, filepath.Join(dir, "all.yaml"))
	env["CONFIG_GENERATOR_SCHEMAS"] = "all"
	if r := run(t, dir, env, "generate-config"); r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("scanning %d tables", len(tables)+1)) {
		t.Errorf("all: exit %d, %q", r.code, r.stderr)
	}
}

// TestProgressBarOnTerminal: on a terminal (a pty made by script(1)) the
// progress is a bar, with the unreadable table's warning above it, and
// still no value.
func TestProgressBarOnTerminal(t *testing.T) {
	harness.Require(t, "script")
	pg, ds := world(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "tty.yaml")
	scriptBin, _ := harness.LookBin("script")
	env := baseEnv(pg, out)
	env["TERM"] = "xterm"
	// script runs the command on a pty; its own output is what the
	// terminal received.
	bin := harness.BuildProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, scriptBin, "-qefc", bin+" generate-config", "/dev/null")
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+v)
	}
	screen, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, screen)
	}
	s := string(screen)
	for _, want := range []string{"100%", fmt.Sprintf("(%d/%d", len(tables)+1, len(tables)+1), "warning: public.vault skipped", "\r"} {
		if !strings.Contains(s, want) {
			t.Errorf("the terminal did not get %q:\n%q", want, s)
		}
	}
	if regexp.MustCompile(`(?m)^\[\d+/\d+\] public\.`).MatchString(s) {
		t.Error("plain progress lines on a terminal")
	}
	for _, v := range ds.secretValues {
		if len(v) >= 4 && strings.Contains(s, v) {
			t.Fatalf("the terminal shows the value %q", v)
		}
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, generateOnce(t).data) {
		t.Errorf("the file written on a terminal differs (%v)", err)
	}
}
