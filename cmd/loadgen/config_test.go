package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestParseConfigDefaults(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	cfg, err := parseConfig([]string{"-conn", "postgres://u@h/db"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Conn: "postgres://u@h/db", Workers: 10, Duration: 30 * time.Second, Rampup: 5 * time.Second,
		Query: defaultQuery, Mode: "simple", ExecMode: pgx.QueryExecModeSimpleProtocol, Progress: time.Second,
	}
	if *cfg != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *cfg, want)
	}
}

func TestParseConfigFlags(t *testing.T) {
	cfg, err := parseConfig([]string{
		"-conn", "host=x", "-workers", "32", "-duration", "1m", "-rampup", "10s",
		"-query", "  SELECT now()\n", "-mode", "prepared", "-progress", "0",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 32 || cfg.Duration != time.Minute || cfg.Rampup != 10*time.Second ||
		cfg.Query != "SELECT now()" || cfg.ExecMode != pgx.QueryExecModeCacheStatement || cfg.Progress != 0 {
		t.Fatalf("got %+v", *cfg)
	}
}

func TestParseConfigModes(t *testing.T) {
	for mode, want := range map[string]pgx.QueryExecMode{
		"simple":   pgx.QueryExecModeSimpleProtocol,
		"extended": pgx.QueryExecModeExec,
		"prepared": pgx.QueryExecModeCacheStatement,
	} {
		cfg, err := parseConfig([]string{"-conn", "host=x", "-mode", mode}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("-mode %s: %v", mode, err)
		}
		if cfg.ExecMode != want {
			t.Errorf("-mode %s: exec mode %v, want %v", mode, cfg.ExecMode, want)
		}
	}
}

func TestParseConfigQueryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.sql")
	if err := os.WriteFile(path, []byte("SELECT abalance\n  FROM pgbench_accounts WHERE aid = 1;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig([]string{"-conn", "host=x", "-query-file", path}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Query != "SELECT abalance\n  FROM pgbench_accounts WHERE aid = 1;" {
		t.Fatalf("query %q", cfg.Query)
	}
}

func TestParseConfigDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://env@h/db")
	cfg, err := parseConfig(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Conn != "postgres://env@h/db" {
		t.Fatalf("conn %q, want DATABASE_URL", cfg.Conn)
	}
}

func TestParseConfigIdle(t *testing.T) {
	cfg, err := parseConfig([]string{"-conn", "host=x", "-idle", "-duration", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Idle || cfg.Duration != 0 {
		t.Fatalf("got %+v", *cfg)
	}
}

func TestParseConfigRejects(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	qf := filepath.Join(t.TempDir(), "q.sql")
	if err := os.WriteFile(qf, []byte("SELECT 2"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "-conn is required"},
		{[]string{"-conn", "h", "-workers", "0"}, "-workers must be at least 1"},
		{[]string{"-conn", "h", "-duration", "0"}, "-duration must be positive"},
		{[]string{"-conn", "h", "-duration", "-1s"}, "-duration must be positive"},
		{[]string{"-conn", "h", "-rampup", "-1s"}, "-rampup must not be negative"},
		{[]string{"-conn", "h", "-duration", "5s", "-rampup", "5s"}, "must be shorter than -duration"},
		{[]string{"-conn", "h", "-mode", "binary"}, "-mode must be simple, extended or prepared"},
		{[]string{"-conn", "h", "-query", "  "}, "the query is empty"},
		{[]string{"-conn", "h", "-query", "SELECT 1", "-query-file", qf}, "mutually exclusive"},
		{[]string{"-conn", "h", "-query-file", qf + ".missing"}, "-query-file"},
		{[]string{"-conn", "h", "-progress", "-1s"}, "-progress must not be negative"},
		{[]string{"-conn", "h", "extra"}, "unexpected argument"},
		{[]string{"-conn", "h", "-workers", "many"}, "invalid value"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		_, err := parseConfig(tc.args, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: error %v, want a usage error", tc.args, err)
			continue
		}
		if !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%q: stderr %q does not mention %q", tc.args, stderr.String(), tc.msg)
		}
	}
}

func TestParseConfigHelp(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseConfig([]string{"-help"}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-help: %v", err)
	}
	for _, f := range []string{"-conn", "-workers", "-duration", "-rampup", "-query", "-query-file", "-mode", "-idle"} {
		if !strings.Contains(stderr.String(), f) {
			t.Errorf("usage does not list %s", f)
		}
	}
	if code := run(t.Context(), []string{"-help"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Errorf("run -help: exit %d, want 0", code)
	}
	if code := run(t.Context(), []string{"-workers", "0"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("run with bad flags: exit %d, want 2", code)
	}
}
