// Package config reads pgproxy's settings from the environment (and an optional
// .env file), applies defaults and validates them. An invalid value produces an
// error naming the variable and the values it accepts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the validated proxy configuration.
type Config struct {
	ListenAddr       string
	BackendURL       string
	Backend          BackendURL
	HealthCheckAddr  string
	TLSEnabled       bool
	TLSCertPath      string
	TLSKeyPath       string
	RequireClientTLS bool
	BackendCAPath    string

	MaxConnsPerIPPerMin int
	MaxMessageSize      int // bytes
	AllowMD5Auth        bool
	MaxClientConns      int

	StartupTimeout        time.Duration
	ShutdownDrainTimeout  time.Duration
	BackendConnectTimeout time.Duration

	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int

	LogLevel  string
	LogFormat string
	// OIDCAuth makes clients authenticate with a JWT (see package identity
	// for the OIDC_* variables, read through Getenv).
	OIDCAuth bool
	// Getenv reads a variable the way Load did (process first, then .env).
	Getenv func(string) string `json:"-"`
	// EnablePprof serves Go's profiler under /debug/pprof/ on the health port.
	EnablePprof bool
	// Agent holds transparent mode's settings (pgproxy agent).
	Agent Agent
}

// Agent is transparent mode's configuration. INTERCEPT_TARGETS stays text
// here: the agent package parses it into eBPF targets.
type Agent struct {
	Mode             string // connect or tproxy
	Targets          string
	Cgroup           string
	ListenAddr       string
	RedirectAddrs    []netip.AddrPort
	Accelerate       bool
	PinPath          string
	FailClosed       bool
	TPROXYInterfaces []string
	TPROXYMethod     string // auto, tcx or iptables
}

// Var describes one environment variable: its name, default and meaning.
type Var struct {
	Name    string
	Default string
	Help    string
}

// Vars lists every variable the proxy reads, in the order --help prints them.
var Vars = []Var{
	{"LISTEN_ADDR", ":5432", "address the proxy accepts PostgreSQL clients on"},
	{"PG_BACKEND_URL", "", "backend PostgreSQL URL (required): host, port, default database and sslmode; in passthrough auth the client's own user and password go through"},
	{"HEALTH_CHECK_ADDR", ":8080", "address of the HTTP server with /health, /ready and /metrics"},
	{"TLS_ENABLED", "false", "offer TLS to clients (needs TLS_CERT_PATH and TLS_KEY_PATH)"},
	{"TLS_CERT_PATH", "", "PEM certificate chain presented to clients"},
	{"TLS_KEY_PATH", "", "PEM private key for TLS_CERT_PATH"},
	{"REQUIRE_CLIENT_TLS", "false", "refuse plaintext clients with SQLSTATE 28000 (needs TLS_ENABLED)"},
	{"PG_BACKEND_CA_PATH", "", "PEM CA bundle used to verify the backend (sslmode=verify-ca or verify-full)"},
	{"MAX_CONNS_PER_IP_PER_MIN", "60", "new connections accepted per client IP per minute; 0 disables the limit"},
	{"MAX_MESSAGE_SIZE_MB", "4", "largest message a client may send, in MiB (1-1024)"},
	{"ALLOW_MD5_AUTH", "false", "relay MD5 password challenges to clients (MD5 is weak; refused by default)"},
	{"MAX_CLIENT_CONNS", "1000", "client connections open at once; more get SQLSTATE 53300; 0 means no limit"},
	{"STARTUP_TIMEOUT", "10s", "time a client has from connect until authentication completes"},
	{"BACKEND_CONNECT_TIMEOUT", "5s", "time allowed to open a backend connection"},
	{"SHUTDOWN_DRAIN_TIMEOUT", "30s", "on SIGTERM, time sessions get to finish before they are closed with 57P01"},
	{"TCP_KEEPALIVE_IDLE", "60s", "TCP keepalive idle time on client and backend sockets; 0 disables keepalives"},
	{"TCP_KEEPALIVE_INTERVAL", "15s", "TCP keepalive probe interval"},
	{"TCP_KEEPALIVE_COUNT", "4", "TCP keepalive probes before the connection is dropped"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOG_FORMAT", "json", "json or text"},
	{"OIDC_AUTH", "false", "clients authenticate with a JWT as password; the backend sees PG_BACKEND_URL's service account"},
	{"OIDC_DISCOVERY_URL", "", "issuer's .well-known/openid-configuration URL (required with OIDC_AUTH)"},
	{"OIDC_ISSUER_OVERRIDE", "", "the iss tokens must carry when it differs from discovery (Entra ID v1: https://sts.windows.net/<tenant>/)"},
	{"OIDC_AUDIENCE", "", "comma list of accepted audiences, any match (required with OIDC_AUTH)"},
	{"OIDC_ALLOWED_ROLES", "", "comma list; a token needs one of them (empty: no role check)"},
	{"OIDC_ROLES_CLAIM", "", "extra dot path holding roles, e.g. custom.path.roles"},
	{"OIDC_ALLOWED_DATABASES", "", "comma list of databases JWT users may open (empty: any, with a start-up warning)"},
	{"OIDC_IDENTITY_CLAIMS", "email,upn,preferred_username,sub", "claims tried in order for the identity put in application_name"},
	{"OIDC_CERT_PATH", "", "PEM CA bundle added to the system roots for the issuer's HTTPS"},
	{"OIDC_CLOCK_LEEWAY", "60s", "tolerance on exp, nbf and iat (at most 5m)"},
	{"INTERCEPT_MODE", "connect", "agent: connect (cgroup connect hooks on this node) or tproxy (traffic from other hosts)"},
	{"INTERCEPT_TARGETS", "", "agent: comma list of intercepted destinations, address:port or CIDR:port, IPv4 or [IPv6]"},
	{"INTERCEPT_CGROUP", "", "agent: cgroup v2 directory whose connections are intercepted (default: the cgroup2 root)"},
	{"AGENT_LISTEN_ADDR", "127.0.0.1:15432", "agent: where redirected connections arrive"},
	{"AGENT_REDIRECT_ADDRS", "", "agent: addresses clients are sent to (one IPv4, one IPv6); default the listener's; pods need the node's veth address"},
	{"ACCELERATE_LOCAL", "false", "agent: sk_msg shortcut between the application's socket and the agent's"},
	{"BPF_PIN_PATH", "", "agent: pin maps and programs under this bpffs folder for bpftool"},
	{"BPF_FAIL_CLOSED", "false", "agent: pin the attachments too, so redirection outlives a crashed agent (connections fail instead of bypassing the proxy)"},
	{"TPROXY_INTERFACES", "", "agent, tproxy mode: comma list of interfaces whose ingress is intercepted"},
	{"TPROXY_METHOD", "auto", "agent, tproxy mode: tcx (eBPF bpf_sk_assign), iptables (TPROXY rules), or auto (tcx, iptables where the kernel lacks tcx)"},
	{"LOW_LATENCY_RUNTIME", "true", "re-execute once with GODEBUG=schedtrace=2147483647 so Go's sysmon never parks (saves a futex wake per syscall)"},
	{"ENABLE_PPROF", "false", "serve Go's profiler at /debug/pprof/ on HEALTH_CHECK_ADDR (keep that port private)"},
}

// Usage returns the text --help prints: every variable with its default.
func Usage() string {
	var b strings.Builder
	b.WriteString("Environment variables (also read from ./.env when present):\n")
	for _, v := range Vars {
		def := v.Default
		if def == "" {
			def = "(none)"
		}
		fmt.Fprintf(&b, "  %-26s default %-8s %s\n", v.Name, def, v.Help)
	}
	return b.String()
}

// Known reports whether name is a variable pgproxy reads.
func Known(name string) bool {
	for _, v := range Vars {
		if v.Name == name {
			return true
		}
	}
	return false
}

// Load reads the configuration through getenv (os.Getenv in production),
// falling back to each variable's default.
func Load(getenv func(string) string) (*Config, error) {
	p := parser{getenv: getenv}
	c := &Config{
		ListenAddr:            p.addr("LISTEN_ADDR"),
		BackendURL:            p.str("PG_BACKEND_URL"),
		HealthCheckAddr:       p.addr("HEALTH_CHECK_ADDR"),
		TLSEnabled:            p.bool("TLS_ENABLED"),
		TLSCertPath:           p.str("TLS_CERT_PATH"),
		TLSKeyPath:            p.str("TLS_KEY_PATH"),
		RequireClientTLS:      p.bool("REQUIRE_CLIENT_TLS"),
		BackendCAPath:         p.str("PG_BACKEND_CA_PATH"),
		MaxConnsPerIPPerMin:   p.int("MAX_CONNS_PER_IP_PER_MIN", 0, 1_000_000),
		MaxMessageSize:        p.int("MAX_MESSAGE_SIZE_MB", 1, 1024) << 20,
		AllowMD5Auth:          p.bool("ALLOW_MD5_AUTH"),
		MaxClientConns:        p.int("MAX_CLIENT_CONNS", 0, 1_000_000),
		StartupTimeout:        p.dur("STARTUP_TIMEOUT", time.Millisecond),
		BackendConnectTimeout: p.dur("BACKEND_CONNECT_TIMEOUT", time.Millisecond),
		ShutdownDrainTimeout:  p.dur("SHUTDOWN_DRAIN_TIMEOUT", 0),
		KeepAliveIdle:         p.dur("TCP_KEEPALIVE_IDLE", 0),
		KeepAliveInterval:     p.dur("TCP_KEEPALIVE_INTERVAL", time.Second),
		KeepAliveCount:        p.int("TCP_KEEPALIVE_COUNT", 1, 100),
		LogLevel:              p.oneOf("LOG_LEVEL", "debug", "info", "warn", "error"),
		LogFormat:             p.oneOf("LOG_FORMAT", "json", "text"),
		EnablePprof:           p.bool("ENABLE_PPROF"),
		OIDCAuth:              p.bool("OIDC_AUTH"),
		Getenv:                getenv,
		Agent: Agent{
			Mode:             p.oneOf("INTERCEPT_MODE", "connect", "tproxy"),
			Targets:          p.str("INTERCEPT_TARGETS"),
			Cgroup:           p.str("INTERCEPT_CGROUP"),
			ListenAddr:       p.addr("AGENT_LISTEN_ADDR"),
			RedirectAddrs:    p.addrPorts("AGENT_REDIRECT_ADDRS"),
			Accelerate:       p.bool("ACCELERATE_LOCAL"),
			PinPath:          p.str("BPF_PIN_PATH"),
			FailClosed:       p.bool("BPF_FAIL_CLOSED"),
			TPROXYInterfaces: SplitList(p.str("TPROXY_INTERFACES")),
			TPROXYMethod:     p.oneOf("TPROXY_METHOD", "auto", "tcx", "iptables"),
		},
	}
	if c.Agent.FailClosed && c.Agent.PinPath == "" {
		p.fail("BPF_FAIL_CLOSED", "=true needs BPF_PIN_PATH (the pinned links are what outlives the agent)")
	}
	if c.BackendURL == "" {
		p.fail("PG_BACKEND_URL", "is required (for example postgres://db.internal:5432/app?sslmode=verify-full)")
	} else if b, err := ParseBackendURL(c.BackendURL); err != nil {
		p.fail("PG_BACKEND_URL", err.Error())
	} else {
		c.Backend = b
	}
	if c.TLSEnabled {
		for _, name := range []string{"TLS_CERT_PATH", "TLS_KEY_PATH"} {
			path := p.str(name)
			if path == "" {
				p.fail(name, "is required when TLS_ENABLED=true")
			} else if _, err := os.Stat(path); err != nil {
				p.fail(name, fmt.Sprintf("cannot be read: %v", err))
			}
		}
	}
	if c.RequireClientTLS && !c.TLSEnabled {
		p.fail("REQUIRE_CLIENT_TLS", "needs TLS_ENABLED=true")
	}
	if c.BackendCAPath != "" {
		if _, err := os.Stat(c.BackendCAPath); err != nil {
			p.fail("PG_BACKEND_CA_PATH", fmt.Sprintf("cannot be read: %v", err))
		}
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// FromEnvironment loads .env (when envFile exists; variables already set in
// the process win) and then the process environment.
func FromEnvironment(envFile string) (*Config, error) {
	fileVars, err := ReadDotEnv(envFile)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for k := range fileVars {
		if !Known(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: unknown variable(s) %s (see pgproxy --help)", envFile, strings.Join(unknown, ", "))
	}
	return Load(func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return fileVars[name]
	})
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, fmt.Errorf("%s %s", name, msg))
}

func (p *parser) str(name string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

func (p *parser) addr(name string) string {
	v := p.str(name)
	if _, port, err := net.SplitHostPort(v); err != nil {
		p.fail(name, fmt.Sprintf("=%q is not host:port (for example :5432 or 127.0.0.1:5432)", v))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(name, fmt.Sprintf("=%q has an invalid port", v))
	}
	return v
}

func (p *parser) bool(name string) bool {
	v := strings.ToLower(p.str(name))
	switch v {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off", "":
		return false
	}
	p.fail(name, fmt.Sprintf("=%q must be true or false", v))
	return false
}

func (p *parser) int(name string, lo, hi int) int {
	v := p.str(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("=%q must be a whole number from %d to %d", v, lo, hi))
	}
	return n
}

func (p *parser) dur(name string, min time.Duration) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		p.fail(name, fmt.Sprintf("=%q must be a duration such as 10s or 500ms (at least %v)", v, min))
	}
	return d
}

func (p *parser) addrPorts(name string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range SplitList(p.str(name)) {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			p.fail(name, fmt.Sprintf(": %q is not address:port ([v6]:port for IPv6)", a))
			continue
		}
		out = append(out, ap)
	}
	return out
}

// SplitList splits a comma-separated list, trimming blanks and dropping
// empty and repeated entries.
func SplitList(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || seen[part] {
			continue
		}
		seen[part] = true
		out = append(out, part)
	}
	return out
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v := strings.ToLower(p.str(name))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, fmt.Sprintf("=%q must be one of %s", v, strings.Join(allowed, ", ")))
	return allowed[0]
}

// BackendURL is the parsed PG_BACKEND_URL.
type BackendURL struct {
	Host     string // host name or address, no brackets
	Port     string
	Database string // default database when the client names none
	User     string // service account (used by JWT auth); may be empty
	Password string
	SSLMode  string // disable, allow, prefer, require, verify-ca, verify-full
	Params   map[string]string
}

// Addr returns host:port.
func (b BackendURL) Addr() string { return net.JoinHostPort(b.Host, b.Port) }

// String returns the URL without its password, safe for logs.
func (b BackendURL) String() string {
	u := url.URL{Scheme: "postgres", Host: b.Addr(), Path: "/" + b.Database}
	if b.User != "" {
		u.User = url.User(b.User)
	}
	return u.String() + "?sslmode=" + b.SSLMode
}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// ParseBackendURL parses a postgres:// or postgresql:// URL.
func ParseBackendURL(raw string) (BackendURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return BackendURL{}, errors.New("is not a valid URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return BackendURL{}, fmt.Errorf("must start with postgres:// (got scheme %q)", u.Scheme)
	}
	b := BackendURL{Host: u.Hostname(), Port: u.Port(), Database: strings.TrimPrefix(u.Path, "/"), SSLMode: "prefer", Params: map[string]string{}}
	if b.Host == "" {
		return BackendURL{}, errors.New("has no host")
	}
	if b.Port == "" {
		b.Port = "5432"
	}
	if u.User != nil {
		b.User = u.User.Username()
		b.Password, _ = u.User.Password()
	}
	for k, vs := range u.Query() {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case "sslmode":
			b.SSLMode = vs[0]
		default:
			b.Params[k] = vs[0]
		}
	}
	ok := false
	for _, m := range sslModes {
		ok = ok || b.SSLMode == m
	}
	if !ok {
		return BackendURL{}, fmt.Errorf("has sslmode=%q; accepted: %s", b.SSLMode, strings.Join(sslModes, ", "))
	}
	return b, nil
}
