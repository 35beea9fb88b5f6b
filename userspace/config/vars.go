package config

import (
	"fmt"
	"strings"
)

// Section groups variables. --help prints a heading per section, and the
// README has a table of variables under a heading that contains the title.
type Section string

// The sections, in the order --help prints them. Each is loaded by a
// function of its own (loadExplicit, loadOIDC, loadAgent).
const (
	SectionExplicit Section = "Explicit mode"
	SectionToken    Section = "Token (JWT/OIDC) authentication"
	SectionAgent    Section = "Transparent mode (pgproxy agent)"
	SectionGuard    Section = "Guardrails (query analysis)"
	SectionMasking  Section = "Data masking"
	SectionAWS      Section = "AWS identity (IAM)"
	SectionLLM      Section = "AI tier (language model)"
)

// sectionNotes is the line --help prints under a section heading.
var sectionNotes = map[Section]string{
	SectionExplicit: "pgproxy agent reads these too, except LISTEN_ADDR",
	SectionToken:    "both modes; the OIDC_* settings are read only with OIDC_AUTH=true",
	SectionAgent:    "only pgproxy agent reads these",
	SectionGuard:    "both modes; inefficient read statements are blocked, logged or shunted",
	SectionMasking:  "both modes; masked columns never leave the proxy in clear",
	SectionAWS:      "both modes; credentials come from the default AWS chain (environment, profiles, IRSA, Pod Identity, ECS, instance metadata)",
	SectionLLM:      "with ANALYSIS_ENABLED=true; on when a provider is configured; the model sees normalized statements (no constants, no comments), never rows",
}

// Var describes one environment variable: its section, name, default and
// meaning.
type Var struct {
	Section Section
	Name    string
	Default string
	Help    string
}

// Vars lists every variable pgproxy reads, grouped by section, in the order
// --help prints them. A new variable goes into its section's block here, in
// the README table of that section, and into the section's load function.
var Vars = []Var{
	{SectionExplicit, "LISTEN_ADDR", ":5432", "address the proxy accepts PostgreSQL clients on"},
	{SectionExplicit, "PG_BACKEND_URL", "", "backend PostgreSQL URL (required): host, port, default database and sslmode; in passthrough auth the client's own user and password go through"},
	{SectionExplicit, "HEALTH_CHECK_ADDR", ":8080", "address of the HTTP server with /health, /ready and /metrics"},
	{SectionExplicit, "TLS_ENABLED", "false", "offer TLS to clients (needs TLS_CERT_PATH and TLS_KEY_PATH)"},
	{SectionExplicit, "TLS_CERT_PATH", "", "PEM certificate chain presented to clients"},
	{SectionExplicit, "TLS_KEY_PATH", "", "PEM private key for TLS_CERT_PATH"},
	{SectionExplicit, "REQUIRE_CLIENT_TLS", "false", "refuse plaintext clients with SQLSTATE 28000 (needs TLS_ENABLED)"},
	{SectionExplicit, "PG_BACKEND_CA_PATH", "", "PEM CA bundle used to verify the backend (sslmode=verify-ca or verify-full)"},
	{SectionExplicit, "MAX_CONNS_PER_IP_PER_MIN", "60", "new connections accepted per client IP per minute; 0 disables the limit"},
	{SectionExplicit, "MAX_MESSAGE_SIZE_MB", "4", "largest message a client may send, in MiB (1-1024)"},
	{SectionExplicit, "ALLOW_MD5_AUTH", "false", "relay MD5 password challenges to clients (MD5 is weak; refused by default)"},
	{SectionExplicit, "MAX_CLIENT_CONNS", "1000", "client connections open at once; more get SQLSTATE 53300; 0 means no limit"},
	{SectionExplicit, "STARTUP_TIMEOUT", "15s", "time a client has from connect until authentication completes"},
	{SectionExplicit, "BACKEND_CONNECT_TIMEOUT", "5s", "time allowed to open a backend connection"},
	{SectionExplicit, "SHUTDOWN_DRAIN_TIMEOUT", "30s", "on SIGTERM, time sessions get to finish before they are closed with 57P01"},
	{SectionExplicit, "TCP_KEEPALIVE_IDLE", "60s", "TCP keepalive idle time on client and backend sockets; 0 disables keepalives"},
	{SectionExplicit, "TCP_KEEPALIVE_INTERVAL", "15s", "TCP keepalive probe interval"},
	{SectionExplicit, "TCP_KEEPALIVE_COUNT", "4", "TCP keepalive probes before the connection is dropped"},
	{SectionExplicit, "LOG_LEVEL", "info", "debug, info, warn or error"},
	{SectionExplicit, "LOG_FORMAT", "json", "json or text"},
	{SectionExplicit, "LOW_LATENCY_RUNTIME", "true", "re-execute once with GODEBUG=schedtrace=2147483647 so Go's sysmon never parks (saves a futex wake per syscall); process environment only, refused in .env"},
	{SectionExplicit, "BACKEND_FLAVOR", "postgres", "postgres, redshift or auto (the analysis reads version()); redshift: plans from EXPLAIN's text judged on Redshift's signals, facts from svv_table_info, IAM logins (PG_IAM_AUTH) get Redshift temporary credentials"},
	{SectionExplicit, "ENABLE_PPROF", "false", "serve Go's profiler at /debug/pprof/ on HEALTH_CHECK_ADDR (keep that port private)"},
	{SectionToken, "OIDC_AUTH", "false", "clients authenticate with a JWT as password; the backend sees PG_BACKEND_URL's service account"},
	{SectionToken, "OIDC_DISCOVERY_URL", "", "issuer's .well-known/openid-configuration URL (required with OIDC_AUTH)"},
	{SectionToken, "OIDC_ISSUER_OVERRIDE", "", "the iss tokens must carry when it differs from discovery (Entra ID v1: https://sts.windows.net/<tenant>/)"},
	{SectionToken, "OIDC_AUDIENCE", "", "comma list of accepted audiences, any match (required with OIDC_AUTH)"},
	{SectionToken, "OIDC_ALLOWED_ROLES", "", "comma list; a token needs one of them (empty: no role check)"},
	{SectionToken, "OIDC_ROLES_CLAIM", "", "extra dot path holding roles, e.g. custom.path.roles"},
	{SectionToken, "OIDC_ALLOWED_DATABASES", "", "comma list of databases JWT users may open (empty: any, with a start-up warning)"},
	{SectionToken, "OIDC_IDENTITY_CLAIMS", "email,upn,preferred_username,sub", "claims tried in order for the identity put in application_name"},
	{SectionToken, "AUDIT_QUERY_COMMENT", "auto", "auto, on or off: put /* application_name=jwt:<identity> */ before every statement of a token session, for servers whose statement views show the text but not application_name; auto: on with BACKEND_FLAVOR=redshift (stv_recents, stl_query)"},
	{SectionToken, "OIDC_CERT_PATH", "", "PEM CA bundle added to the system roots for the issuer's HTTPS"},
	{SectionToken, "OIDC_CLOCK_LEEWAY", "60s", "tolerance on exp, nbf and iat (at most 5m)"},
	{SectionGuard, "ANALYSIS_ENABLED", "false", "judge every read statement shape (rules on the parse tree, then PostgreSQL's planner) before it runs"},
	{SectionGuard, "PROXY_MODE", "blocking", "what happens to an inefficient statement: blocking (refused, 54000), non-blocking (runs, recorded) or shunt (runs on SHUNT_NODE_URL)"},
	{SectionGuard, "SHUNT_NODE_URL", "", "PostgreSQL URL of the slow node inefficient reads run on (required with PROXY_MODE=shunt)"},
	{SectionGuard, "REPORTER_DB_URL", "", "PostgreSQL URL (with user) of the database that gets pgproxy.query_issues and pgproxy.query_metrics (empty: no reporter)"},
	{SectionGuard, "STORE_RAW_QUERY", "false", "also store statement text, with constants replaced by $n, in the reporter (default: fingerprint only)"},
	{SectionGuard, "VALKEY_URL", "", "redis:// or rediss:// URL of the shared decision cache (empty: in-process cache only)"},
	{SectionGuard, "VALKEY_TLS_SKIP_VERIFY", "false", "do not verify the Valkey server certificate (development only)"},
	{SectionGuard, "METADATA_CACHE_TTL", "1h", "how long table facts (row estimates, sizes, indexes) are kept before they are read again"},
	{SectionGuard, "ANALYSIS_CACHE_TTL", "1h", "how long a decision is kept (in-process and in Valkey)"},
	{SectionGuard, "ANALYSIS_CACHE_SIZE", "10000", "decisions kept in process (least recently used go first)"},
	{SectionGuard, "ANALYSIS_TIMEOUT", "500ms", "time limit for analysing a new statement shape; then ANALYSIS_FAIL_MODE answers"},
	{SectionGuard, "ANALYSIS_FAIL_MODE", "open", "answer when the analysis cannot finish: open (run the statement) or closed (treat as inefficient)"},
	{SectionGuard, "ANALYSIS_MAX_ROWS", "1000000", "rows read, joined, sorted or hashed from which a statement is inefficient; tables this big are big"},
	{SectionGuard, "ANALYSIS_MAX_COST", "1000000", "planner total cost from which a statement is inefficient; 0 disables the check"},
	{SectionGuard, "ANALYSIS_MAX_OFFSET", "1000000", "OFFSET from which a statement is inefficient (it reads and discards that many rows)"},
	{SectionGuard, "ANALYSIS_EXEMPT_ROLES", "", "comma list of token roles (in passthrough sessions: database users) whose statements are not analysed"},
	{SectionGuard, "ANALYSIS_OVERRIDES_PATH", "", "YAML file of per-fingerprint overrides (allow or block), re-read on change and on SIGHUP"},
	{SectionMasking, "MASKING_ENABLED", "false", "rewrite statements so that the columns MASKING_CONFIG_PATH names are masked (needs a user in PG_BACKEND_URL, or PG_IAM_AUTH)"},
	{SectionMasking, "MASKING_CONFIG_PATH", "./masking_config.yaml", "YAML file of masked tables and columns, re-read on change and on SIGHUP (a broken file keeps the previous one)"},
	{SectionMasking, "MASKING_HMAC_KEY", "", "key of the hmac mask (keyed SHA-256; at least 16 bytes); never logged"},
	{SectionMasking, "MASKING_HMAC_KEY_FILE", "", "file holding the hmac mask's key, instead of MASKING_HMAC_KEY"},
	{SectionMasking, "CONFIG_GENERATOR_MODE", "false", "pgproxy without a command runs generate-config instead of the proxy: scan PG_BACKEND_URL's tables and write MASKING_CONFIG_PATH for review"},
	{SectionMasking, "CONFIG_GENERATOR_SCHEMAS", "public", "schemas generate-config scans: a comma list, or all (every schema but the system ones)"},
	{SectionMasking, "CONFIG_GENERATOR_LLM", "true", "with a model provider configured (AI tier), generate-config asks it about the columns the detectors cannot decide (value shapes only)"},
	{SectionMasking, "CONFIG_GENERATOR_LLM_SAMPLES", "false", "send the model up to 5 sampled values of such a column too, not only their shapes (the values leave the proxy)"},
	{SectionAWS, "PG_IAM_AUTH", "false", "the proxy's own logins (token sessions' service account, shunt node, analysis, catalogs, a reporter URL without password) use RDS / Aurora IAM tokens"},
	{SectionAWS, "PG_IAM_USERNAME", "", "database user granted rds_iam that the proxy logs in as (required with PG_IAM_AUTH)"},
	{SectionAWS, "PG_AWS_REGION", "", "region of the RDS / Aurora instance; signs the tokens (required with PG_IAM_AUTH)"},
	{SectionAWS, "PG_IAM_ROLE_ARN", "", "role assumed through STS to sign the tokens (cross-account); empty: the chain's own credentials"},
	{SectionAWS, "PG_IAM_EXTERNAL_ID", "", "external ID passed to AssumeRole with PG_IAM_ROLE_ARN"},
	{SectionAWS, "PG_IAM_SESSION_NAME", "pgproxy", "RoleSessionName of the assumed roles (shown in CloudTrail)"},
	{SectionAWS, "REDSHIFT_CLUSTER_ID", "", "BACKEND_FLAVOR=redshift: provisioned cluster whose GetClusterCredentials give PG_IAM_USERNAME a temporary password"},
	{SectionAWS, "REDSHIFT_WORKGROUP", "", "BACKEND_FLAVOR=redshift: serverless workgroup whose GetCredentials give the AWS identity's database user a temporary password"},
	{SectionAWS, "VALKEY_IAM_AUTH", "false", "the decision cache logs in to ElastiCache / Valkey with IAM tokens (needs a rediss:// VALKEY_URL without password)"},
	{SectionAWS, "VALKEY_IAM_USER", "", "IAM-enabled ElastiCache user id (required with VALKEY_IAM_AUTH)"},
	{SectionAWS, "VALKEY_CACHE_NAME", "", "replication group id or serverless cache name the tokens are signed for (required with VALKEY_IAM_AUTH)"},
	{SectionAWS, "VALKEY_SERVERLESS", "false", "the cache is ElastiCache Serverless (tokens name ResourceType=ServerlessCache)"},
	{SectionAWS, "VALKEY_AWS_REGION", "", "region of the cache (empty: PG_AWS_REGION)"},
	{SectionAWS, "VALKEY_IAM_ROLE_ARN", "", "role assumed through STS to sign the cache's tokens (cross-account); empty: the chain's own credentials"},
	{SectionAWS, "VALKEY_IAM_EXTERNAL_ID", "", "external ID passed to AssumeRole with VALKEY_IAM_ROLE_ARN"},
	{SectionLLM, "LLM_PROVIDER", "", "portkey, bedrock, anthropic or openai (any OpenAI-compatible server); empty: the first whose variables are set, in that order"},
	{SectionLLM, "LLM_MODEL", "", "model asked (portkey, anthropic, openai); empty: BEDROCK_MODEL_ID for portkey, claude-sonnet-4-20250514 for anthropic, gpt-4.1 for openai"},
	{SectionLLM, "PORTKEY_BASE_URL", "https://api.portkey.ai/v1", "Portkey gateway URL (its OpenAI-compatible chat-completions API)"},
	{SectionLLM, "PORTKEY_API_KEY", "", "Portkey API key (sent as x-portkey-api-key; never logged)"},
	{SectionLLM, "PORTKEY_VIRTUAL_KEY", "", "Portkey virtual key of the provider account, e.g. Bedrock (x-portkey-virtual-key)"},
	{SectionLLM, "BEDROCK_MODEL_ID", "eu.anthropic.claude-sonnet-4-20250514-v1:0", "model or inference profile of Bedrock (directly, or through Portkey)"},
	{SectionLLM, "BEDROCK_REGION", "", "region of Bedrock Converse; credentials from the default AWS chain (AWS_ENDPOINT_URL_BEDROCK_RUNTIME overrides the endpoint)"},
	{SectionLLM, "ANTHROPIC_API_KEY", "", "Anthropic Messages API key (never logged)"},
	{SectionLLM, "ANTHROPIC_BASE_URL", "", "Anthropic API URL (empty: Anthropic's)"},
	{SectionLLM, "OPENAI_BASE_URL", "", "OpenAI-compatible API URL, e.g. http://127.0.0.1:8000/v1 for a local model server (empty: OpenAI's)"},
	{SectionLLM, "OPENAI_API_KEY", "", "key of the OpenAI-compatible API (empty for a server that wants none; never logged)"},
	{SectionLLM, "ANALYSIS_LLM_MODE", "async", "async (tiers 1-2 decide at once, the model's answer updates the decision), sync (borderline statements wait for the model), off"},
	{SectionLLM, "ANALYSIS_LLM_TIMEOUT", "10s", "time limit of one statement's conversation with the model"},
	{SectionLLM, "ANALYSIS_LLM_BAND", "0.25", "borderline band: plans from this fraction of a limit up to its inverse times the limit are decided by the model"},
	{SectionLLM, "ANALYSIS_LLM_CAN_ALLOW", "false", "let the model's efficient override a borderline inefficient verdict of the planner"},
	{SectionLLM, "ANALYSIS_LLM_MAX_STEPS", "6", "model turns per statement (tool calls and the answer)"},
	{SectionLLM, "ANALYSIS_LLM_MAX_TOKENS", "1024", "output tokens per model turn"},
	{SectionLLM, "ANALYSIS_LLM_TOKEN_BUDGET", "32000", "input and output tokens per statement, all turns together"},
	{SectionLLM, "ANALYSIS_LLM_RETRIES", "2", "retries of a throttled (429) or failed (5xx, time-out) request, with exponential backoff"},
	{SectionLLM, "ANALYSIS_LLM_BREAKER_FAILURES", "3", "consecutive failed requests that open the circuit breaker (no request sent while open)"},
	{SectionLLM, "ANALYSIS_LLM_BREAKER_PAUSE", "30s", "how long the breaker stays open before one probe request (half-open)"},
	{SectionLLM, "ANALYSIS_LLM_MAX_IN_FLIGHT", "4", "conversations at once; a statement that finds them busy keeps the decision of tiers 1-2"},
	{SectionAgent, "INTERCEPT_MODE", "connect", "connect (cgroup connect hooks on this node) or tproxy (traffic from other hosts)"},
	{SectionAgent, "INTERCEPT_TARGETS", "", "comma list of intercepted destinations, address:port or CIDR:port, IPv4 or [IPv6]"},
	{SectionAgent, "INTERCEPT_CGROUP", "", "cgroup v2 directory whose connections are intercepted (empty: the cgroup2 root)"},
	{SectionAgent, "AGENT_LISTEN_ADDR", "127.0.0.1:15432", "where redirected connections arrive"},
	{SectionAgent, "AGENT_REDIRECT_ADDRS", "", "addresses clients are sent to, one IPv4 and one IPv6 (empty: the listen address); pods need the node's veth address"},
	{SectionAgent, "ACCELERATE_LOCAL", "auto", "sk_msg shortcut between the application's socket and the agent's: true, false, or auto (on where the kernel has sk_msg redirects, else off with a log line)"},
	{SectionAgent, "BPF_PIN_PATH", "", "pin maps and programs under this bpffs folder for bpftool"},
	{SectionAgent, "BPF_FAIL_CLOSED", "false", "pin the attachments too, so redirection outlives a crashed agent (connections fail instead of bypassing the proxy)"},
	{SectionAgent, "TPROXY_INTERFACES", "", "with INTERCEPT_MODE=tproxy: comma list of interfaces whose ingress is intercepted"},
	{SectionAgent, "TPROXY_METHOD", "auto", "with INTERCEPT_MODE=tproxy: tcx (eBPF bpf_sk_assign), iptables (TPROXY rules), or auto (tcx, iptables where the kernel lacks tcx)"},
}

// AgentBackendURL is PG_BACKEND_URL's default in transparent mode
// (LoadAgent): the host is replaced by each connection's original
// destination; TLS toward the database is used when the server offers it.
const AgentBackendURL = "postgres://original-destination/?sslmode=prefer"

// agentVars are variables of other sections whose default differs in
// transparent mode; --help lists them under that section as well.
var agentVars = []Var{
	{SectionAgent, "PG_BACKEND_URL", AgentBackendURL, "sslmode, default database and service account; the host is always each connection's original destination"},
}

// Usage returns the text --help prints: every variable with its default,
// section by section.
func Usage() string {
	var b strings.Builder
	b.WriteString("Environment variables, read from the process and then from ./.env (the process wins;\n" +
		"an unknown name in .env stops start-up):\n")
	var section Section
	for _, v := range Vars {
		if v.Section != section {
			section = v.Section
			fmt.Fprintf(&b, "\n%s — %s\n", section, sectionNotes[section])
		}
		usageLine(&b, v)
	}
	for _, v := range agentVars {
		usageLine(&b, v)
	}
	return b.String()
}

func usageLine(b *strings.Builder, v Var) {
	def := v.Default
	if def == "" {
		def = "(none)"
	}
	fmt.Fprintf(b, "  %-26s default %-8s %s\n", v.Name, def, v.Help)
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
