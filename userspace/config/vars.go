package config

import (
	"fmt"
	"strings"
)

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
