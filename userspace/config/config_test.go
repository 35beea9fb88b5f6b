package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://svc:pw@db.internal/app?sslmode=verify-full"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":5432" || c.HealthCheckAddr != ":8080" || c.MaxConnsPerIPPerMin != 60 ||
		c.MaxMessageSize != 4<<20 || c.AllowMD5Auth || c.StartupTimeout != 15*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	b := c.Backend
	if b.Host != "db.internal" || b.Port != "5432" || b.Database != "app" || b.User != "svc" || b.Password != "pw" || b.SSLMode != "verify-full" {
		t.Fatalf("backend: %+v", b)
	}
	if strings.Contains(b.String(), "pw") {
		t.Fatalf("String() leaks the password: %s", b)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"PG_BACKEND_URL":           {},
		"MAX_MESSAGE_SIZE_MB":      {"MAX_MESSAGE_SIZE_MB": "0"},
		"ALLOW_MD5_AUTH":           {"ALLOW_MD5_AUTH": "maybe"},
		"LISTEN_ADDR":              {"LISTEN_ADDR": "5432"},
		"STARTUP_TIMEOUT":          {"STARTUP_TIMEOUT": "ten"},
		"LOG_FORMAT":               {"LOG_FORMAT": "xml"},
		"TLS_CERT_PATH":            {"TLS_ENABLED": "true"},
		"REQUIRE_CLIENT_TLS":       {"REQUIRE_CLIENT_TLS": "true"},
		"MAX_CONNS_PER_IP_PER_MIN": {"MAX_CONNS_PER_IP_PER_MIN": "-1"},
		"INTERCEPT_MODE":           {"INTERCEPT_MODE": "sniff"},
		"AGENT_REDIRECT_ADDRS":     {"AGENT_REDIRECT_ADDRS": "10.0.0.1"},
		"BPF_FAIL_CLOSED":          {"BPF_FAIL_CLOSED": "true"},
		"TPROXY_METHOD":            {"TPROXY_METHOD": "nft"},
	}
	for name, kv := range cases {
		if name != "PG_BACKEND_URL" {
			kv["PG_BACKEND_URL"] = "postgres://localhost/db"
		}
		_, err := Load(env(kv))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
	_, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://h/db?sslmode=sometimes"}))
	if err == nil || !strings.Contains(err.Error(), "verify-full") {
		t.Errorf("bad sslmode error should list accepted values: %v", err)
	}
}

func TestDotEnvFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	os.WriteFile(path, []byte("PG_BACKEND_URL=postgres://h:6543/x\nMAX_CLIENT_CONNS=7\n"), 0o600)
	getenv, err := Environment(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend.Port != "6543" || c.MaxClientConns != 7 {
		t.Fatalf("from .env: %+v", c)
	}
	// The agent's default PG_BACKEND_URL does not hide the one in .env.
	if c, err := LoadAgent(getenv); err != nil || c.Backend.Port != "6543" {
		t.Fatalf("agent from .env: %+v, %v", c, err)
	}
	os.WriteFile(path, []byte("PG_BACKEND_URL=postgres://h/x\nLISTEN_ADR=:1\n"), 0o600)
	if _, err := Environment(path); err == nil || !strings.Contains(err.Error(), "LISTEN_ADR") {
		t.Fatalf("a misspelt variable in .env must stop start-up: %v", err)
	}
}

func TestUsageListsEveryVariableUnderItsSection(t *testing.T) {
	u := Usage()
	for _, v := range Vars {
		if !strings.Contains(u, v.Name) {
			t.Errorf("--help misses %s", v.Name)
		}
	}
	// Each section is one block of Vars, printed under its heading.
	done := map[Section]bool{}
	var last Section
	for _, v := range Vars {
		if v.Section == last {
			continue
		}
		if done[v.Section] {
			t.Errorf("%s: section %q is split in Vars", v.Name, v.Section)
		}
		if _, ok := sectionNotes[v.Section]; !ok {
			t.Errorf("%s: section %q has no note", v.Name, v.Section)
		}
		done[v.Section], last = true, v.Section
		heading := "\n" + string(v.Section) + " — "
		at := strings.Index(u, heading)
		if at < 0 || !strings.Contains(u[at:], "\n  "+v.Name+" ") {
			t.Errorf("--help has no heading %q above %s", v.Section, v.Name)
		}
	}
}

func TestAgentSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://h/db", "INTERCEPT_MODE": "TPROXY",
		"AGENT_REDIRECT_ADDRS": "10.0.0.1:15432, [fd00::1]:15432", "TPROXY_INTERFACES": "eth0,eth1,eth0"}))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agent
	if a.Mode != "tproxy" || a.ListenAddr != "127.0.0.1:15432" || a.TPROXYMethod != "auto" ||
		len(a.RedirectAddrs) != 2 || len(a.TPROXYInterfaces) != 2 {
		t.Fatalf("agent settings: %+v", a)
	}
}

func TestMessagesJoinTheName(t *testing.T) {
	_, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://h/db", "LISTEN_ADDR": "5432",
		"AGENT_REDIRECT_ADDRS": "10.0.0.1"}))
	for _, want := range []string{`LISTEN_ADDR="5432" is not host:port`, `AGENT_REDIRECT_ADDRS: "10.0.0.1" is not address:port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %s", err, want)
		}
	}
}

func TestBackendURLPortAndHost(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://h:0/db":         "port",
		"postgres://h:65536/db":     "port",
		"postgres://h1,h2:5432/db":  "several hosts",
		"postgres://[fd00::1]:6432": "",
	} {
		b, err := ParseBackendURL(raw)
		if want == "" {
			if err != nil || b.Addr() != "[fd00::1]:6432" {
				t.Errorf("%s: %+v, %v", raw, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one about %s", raw, err, want)
		}
	}
}

func TestLowLatencyRuntime(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "off": false, " FALSE ": false, "0": false} {
		on, err := LowLatencyRuntime(env(map[string]string{"LOW_LATENCY_RUNTIME": v}))
		if err != nil || on != want {
			t.Errorf("LOW_LATENCY_RUNTIME=%q: %v, %v; want %v", v, on, err, want)
		}
	}
	if _, err := LowLatencyRuntime(env(map[string]string{"LOW_LATENCY_RUNTIME": "maybe"})); err == nil ||
		!strings.HasPrefix(err.Error(), `LOW_LATENCY_RUNTIME="maybe"`) {
		t.Errorf("a bad value: %v", err)
	}
	// Load checks it too, so a bad value stops start-up.
	_, err := Load(env(map[string]string{"PG_BACKEND_URL": "postgres://h/db", "LOW_LATENCY_RUNTIME": "maybe"}))
	if err == nil || !strings.Contains(err.Error(), "LOW_LATENCY_RUNTIME") {
		t.Errorf("Load with LOW_LATENCY_RUNTIME=maybe: %v", err)
	}
}

func TestLowLatencyRuntimeRefusedInDotEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(path, []byte("PG_BACKEND_URL=postgres://h/x\nLOW_LATENCY_RUNTIME=false\n"), 0o600)
	_, err := Environment(path)
	if err == nil || !strings.Contains(err.Error(), "LOW_LATENCY_RUNTIME is read from the process environment only") {
		t.Fatalf("LOW_LATENCY_RUNTIME in .env: %v", err)
	}
}

func TestAgentDefaultBackendURL(t *testing.T) {
	if _, err := Load(env(nil)); err == nil || !strings.HasPrefix(err.Error(), "PG_BACKEND_URL is required") {
		t.Fatalf("explicit mode without PG_BACKEND_URL: %v", err)
	}
	c, err := LoadAgent(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.BackendURL != AgentBackendURL || c.Backend.SSLMode != "prefer" {
		t.Fatalf("agent default backend: %+v", c.Backend)
	}
	c, err = LoadAgent(env(map[string]string{"PG_BACKEND_URL": "postgres://svc:pw@x/app?sslmode=require"}))
	if err != nil || c.Backend.User != "svc" || c.Backend.SSLMode != "require" {
		t.Fatalf("agent with PG_BACKEND_URL: %+v, %v", c, err)
	}
	if !strings.Contains(Usage(), AgentBackendURL) {
		t.Errorf("--help does not show the agent's PG_BACKEND_URL default")
	}
}

// TestLoadReadsExactlyVars: every variable the load functions read is in
// Vars (so --help, Known and the README know it), and every one in Vars is
// read.
func TestLoadReadsExactlyVars(t *testing.T) {
	read := map[string]bool{}
	getenv := func(name string) string {
		read[name] = true
		return map[string]string{"PG_BACKEND_URL": "postgres://h/db", "OIDC_AUTH": "true"}[name]
	}
	Load(getenv)
	LoadAgent(getenv)
	for name := range read {
		if !Known(name) {
			t.Errorf("Load reads %s, which is not in Vars", name)
		}
	}
	for _, v := range Vars {
		if !read[v.Name] {
			t.Errorf("%s is in Vars but Load never reads it", v.Name)
		}
	}
}
