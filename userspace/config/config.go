package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
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
	// EnablePprof serves Go's profiler under /debug/pprof/ on the health port.
	EnablePprof bool
	// LowLatencyRuntime is LOW_LATENCY_RUNTIME as Load saw it; the re-exec it
	// asks for has already happened (see LowLatencyRuntime).
	LowLatencyRuntime bool
	// OIDC holds token authentication's settings (OIDC_AUTH, OIDC_*).
	OIDC OIDC
	// Agent holds transparent mode's settings (pgproxy agent).
	Agent Agent
	// Guardrails holds the query analysis settings.
	Guardrails Guardrails
	// Masking holds the data masking settings.
	Masking Masking
	// Generator holds the masking file generator's settings.
	Generator Generator
	// LLM holds the model tier's settings (LLM_*, ANALYSIS_LLM_*).
	LLM LLM
	// AWS holds the IAM settings (PG_IAM_*, VALKEY_IAM_*, REDSHIFT_*).
	AWS AWS
	// Flavor is BACKEND_FLAVOR: postgres, redshift or auto.
	Flavor string
}

// Backend flavours.
const (
	FlavorPostgres = "postgres"
	FlavorRedshift = "redshift"
	// FlavorAuto: the analysis asks the server (version()) on its first
	// connection; IAM logins need the flavour named.
	FlavorAuto = "auto"
)

// Load reads explicit mode's configuration through getenv (os.Getenv, or
// the lookup Environment returns), falling back to each variable's default.
// Each section is parsed by a function of its own; all errors are returned
// together, one line each, every line starting with the variable's name.
func Load(getenv func(string) string) (*Config, error) {
	return load(&parser{getenv: getenv})
}

// LoadAgent is Load for transparent mode (pgproxy agent): PG_BACKEND_URL
// defaults to AgentBackendURL.
func LoadAgent(getenv func(string) string) (*Config, error) {
	return load(&parser{getenv: getenv, agent: true})
}

func load(p *parser) (*Config, error) {
	c := &Config{}
	loadExplicit(p, c)
	c.OIDC = loadOIDC(p, c.Flavor)
	c.Agent = loadAgent(p)
	c.Guardrails = loadGuardrails(p)
	c.Masking = loadMasking(p)
	c.Generator = loadGenerator(p)
	c.LLM = loadLLM(p)
	c.AWS = loadAWS(p, c)
	// The proxy's own connections log in as PG_BACKEND_URL's user, which
	// loadAWS made PG_IAM_USERNAME with IAM.
	if c.Backend.Host != "" && c.Backend.User == "" {
		const login = "a user in PG_BACKEND_URL (with a password, or PG_IAM_AUTH with PG_IAM_USERNAME)"
		if c.Guardrails.Enabled {
			p.fail("ANALYSIS_ENABLED", "=true needs "+login+": the proxy reads table facts and plans on connections of its own")
		}
		if c.Masking.Enabled {
			p.fail("MASKING_ENABLED", "=true needs "+login+": the proxy reads the catalogs on connections of its own")
		}
	}
	if c.Masking.Enabled && c.Flavor == FlavorRedshift {
		// Refused rather than half working: the masks and the catalog reads
		// use PostgreSQL built-ins and catalogs that Redshift lacks.
		p.fail("MASKING_ENABLED", "=true is not supported with BACKEND_FLAVOR=redshift yet (the masks are written with PostgreSQL built-ins that Redshift lacks)")
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// loadExplicit parses the explicit-mode section (which the agent reads too).
func loadExplicit(p *parser, c *Config) {
	c.ListenAddr = p.addr("LISTEN_ADDR")
	c.BackendURL = p.str("PG_BACKEND_URL")
	c.HealthCheckAddr = p.addr("HEALTH_CHECK_ADDR")
	c.TLSEnabled = p.bool("TLS_ENABLED")
	c.TLSCertPath = p.str("TLS_CERT_PATH")
	c.TLSKeyPath = p.str("TLS_KEY_PATH")
	c.RequireClientTLS = p.bool("REQUIRE_CLIENT_TLS")
	c.BackendCAPath = p.str("PG_BACKEND_CA_PATH")
	c.MaxConnsPerIPPerMin = p.int("MAX_CONNS_PER_IP_PER_MIN", 0, 1_000_000)
	c.MaxMessageSize = p.int("MAX_MESSAGE_SIZE_MB", 1, 1024) << 20
	c.AllowMD5Auth = p.bool("ALLOW_MD5_AUTH")
	c.MaxClientConns = p.int("MAX_CLIENT_CONNS", 0, 1_000_000)
	c.StartupTimeout = p.dur("STARTUP_TIMEOUT", time.Millisecond)
	c.BackendConnectTimeout = p.dur("BACKEND_CONNECT_TIMEOUT", time.Millisecond)
	c.ShutdownDrainTimeout = p.dur("SHUTDOWN_DRAIN_TIMEOUT", 0)
	c.KeepAliveIdle = p.dur("TCP_KEEPALIVE_IDLE", 0)
	c.KeepAliveInterval = p.dur("TCP_KEEPALIVE_INTERVAL", time.Second)
	c.KeepAliveCount = p.int("TCP_KEEPALIVE_COUNT", 1, 100)
	c.LogLevel = p.oneOf("LOG_LEVEL", "debug", "info", "warn", "error")
	c.LogFormat = p.oneOf("LOG_FORMAT", "json", "text")
	c.EnablePprof = p.bool("ENABLE_PPROF")
	c.LowLatencyRuntime = p.bool("LOW_LATENCY_RUNTIME")
	c.Flavor = p.oneOf("BACKEND_FLAVOR", FlavorPostgres, FlavorRedshift, FlavorAuto)

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
}

// Environment returns the lookup Load and LoadAgent read through: the
// process environment, then envFile (.env) when it exists; variables set in
// the process win. An unknown name in envFile, or one read from the process
// environment only (LOW_LATENCY_RUNTIME), is an error.
func Environment(envFile string) (func(string) string, error) {
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
	for _, name := range processOnly {
		if _, ok := fileVars[name]; ok {
			return nil, fmt.Errorf("%s: %s is read from the process environment only (it takes effect before %s is read); set it there, not in %s",
				envFile, name, envFile, envFile)
		}
	}
	return func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return fileVars[name]
	}, nil
}
