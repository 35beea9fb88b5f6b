// Package config reads pgproxy's settings from the environment (and an optional
// .env file), applies defaults and validates them. An invalid value produces an
// error naming the variable and the values it accepts.
package config

import (
	"errors"
	"fmt"
	"net/netip"
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
