// Command pgproxy is the PostgreSQL-wire proxy: explicit-port mode by default.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgproxy/pgproxy/userspace/auth"
	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/identity"
	"github.com/pgproxy/pgproxy/userspace/llm"
	"github.com/pgproxy/pgproxy/userspace/proxy"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

func main() {
	tuneRuntime()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "--help", "help":
			fmt.Print(usage())
			return
		}
	}
	if len(os.Args) > 1 && os.Args[1] == "analyze" {
		os.Exit(analyzeCommand(os.Args[2:]))
	}
	if args, ok := generatorRequested(os.Args[1:]); ok {
		os.Exit(generateCommand(args))
	}
	agentMode := len(os.Args) > 1 && os.Args[1] == "agent"
	if len(os.Args) > 1 && !agentMode {
		fmt.Fprintf(os.Stderr, "pgproxy: unknown command %q\n\n%s", os.Args[1], usage())
		os.Exit(2)
	}
	cfg, err := loadConfig(agentMode)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgproxy: invalid configuration:\n%v\n\nRun pgproxy --help for every variable and its default.\n", err)
		os.Exit(2)
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runMode := run
	if agentMode {
		runMode = runAgent
	}
	if err := runMode(ctx, cfg, log); err != nil {
		log.Error("pgproxy stopped", "err", err)
		os.Exit(1)
	}
}

// loadConfig reads the process environment and ./.env into the mode's
// configuration.
func loadConfig(agentMode bool) (*config.Config, error) {
	getenv, err := config.Environment(".env")
	if err != nil {
		return nil, err
	}
	if agentMode {
		return config.LoadAgent(getenv)
	}
	return config.Load(getenv)
}

// tokenAuth sets up JWT-as-password authentication from the OIDC section
// (checked by config.Load) when OIDC_AUTH=true: it sets opts.Authenticator
// and returns the check /ready adds for the issuer's keys. With OIDC_AUTH
// off it does nothing and returns nil.
func tokenAuth(ctx context.Context, cfg *config.Config, log *slog.Logger, opts *proxy.Options) (issuerReady func() error, err error) {
	if !cfg.OIDC.Enabled {
		return nil, nil
	}
	if !cfg.TLSEnabled {
		log.Warn("OIDC_AUTH is on but TLS_ENABLED is false: tokens travel in clear between clients and the proxy")
	}
	v, err := identity.NewValidator(ctx, identity.ConfigFromOIDC(cfg.OIDC), log)
	if err != nil {
		return nil, err
	}
	opts.Authenticator = &auth.Token{Validator: v}
	opts.QueryComment = cfg.OIDC.QueryComment
	return func() error {
		if !v.Ready() {
			return errors.New("OIDC issuer keys not loaded yet")
		}
		return nil
	}, nil
}

// policySet is the running statement policies that need starting and
// closing: the guardrails and masking (each nil when off).
type policySet struct {
	guard   *guard
	masking *maskingSet
}

func (ps *policySet) start() {
	if ps.guard != nil {
		ps.guard.start()
	}
	if ps.masking != nil {
		ps.masking.start()
	}
}

// close flushes the guardrails' reporter within ctx and closes the rest.
func (ps *policySet) close(ctx context.Context) {
	if ps.guard != nil {
		ps.guard.close(ctx)
	}
	if ps.masking != nil {
		ps.masking.close()
	}
}

// statementPolicies is the one place where the statement policies every
// session asks are chosen, in order: the application_name guard (token
// sessions), the masking rewrite, then the guardrails (analysis of the
// rewritten statement, and the mode's action). Sessions without policies
// relay statements undecoded. The set returned must be started and closed
// by the caller.
func statementPolicies(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics, opts *proxy.Options) (*policySet, error) {
	ps := &policySet{}
	var chain stmt.Chain
	if cfg.OIDC.Enabled {
		chain = append(chain, auth.LockedSettings{})
	}
	if len(chain) > 0 || cfg.Guardrails.Enabled || cfg.Masking.Enabled {
		opts.Parser = sqlparse.NewParser(4096)
	}
	var dialer *backend.Dialer
	if cfg.Guardrails.Enabled || cfg.Masking.Enabled {
		var err error
		if dialer, err = backend.DialerFor(cfg, opts.DialControl); err != nil {
			return nil, err
		}
	}
	var agent *llm.Agent
	if cfg.Guardrails.Enabled || cfg.Masking.Enabled {
		var err error
		if agent, err = modelAgent(ctx, cfg, log, m); err != nil {
			return nil, err
		}
	}
	if cfg.Masking.Enabled {
		ms, err := newMasking(ctx, cfg, log, m, dialer, opts.Tokens, agent)
		if err != nil {
			return nil, err
		}
		ms.policy.Parser = opts.Parser
		ps.masking = ms
		chain = append(chain, ms.policy)
		opts.Settings = maskingSettings()
	}
	opts.Policies = chain
	if !cfg.Guardrails.Enabled {
		gc := cfg.Guardrails
		if gc.Mode != config.ModeBlocking || gc.ReporterURL != "" || gc.ShuntURL != "" || gc.ValkeyURL != "" || gc.OverridesPath != "" {
			log.Warn("PROXY_MODE, SHUNT_NODE_URL, REPORTER_DB_URL, VALKEY_URL and ANALYSIS_OVERRIDES_PATH have no effect without ANALYSIS_ENABLED=true")
		}
		return ps, nil
	}
	g, err := newGuard(ctx, cfg, log, m, opts.Parser, dialer, opts.Tokens, agent)
	if err != nil {
		ps.close(ctx)
		return nil, err
	}
	if err := g.wire(ctx, opts); err != nil {
		ps.close(ctx)
		return nil, err
	}
	ps.guard = g
	log.Info("guardrails on", "mode", cfg.Guardrails.Mode, "reporter", cfg.Guardrails.ReporterURL != "",
		"valkey", cfg.Guardrails.ValkeyURL != "", "overrides", cfg.Guardrails.OverridesPath)
	return ps, nil
}

func usage() string {
	return "pgproxy — PostgreSQL-wire proxy\n\nUsage:\n  pgproxy          explicit-port mode (LISTEN_ADDR)\n" +
		"  pgproxy agent    transparent mode: eBPF interception on this node (INTERCEPT_*, AGENT_*, BPF_*)\n" +
		"  pgproxy analyze [-d database] 'SQL'   the guardrails' decision for one statement\n" +
		"  pgproxy generate-config [--force]   scan the database and write MASKING_CONFIG_PATH for review (also: CONFIG_GENERATOR_MODE=true)\n" +
		"  pgproxy --help   this text\n\n" + config.Usage()
}

func newLogger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	metrics := telemetry.NewMetrics()
	var opts proxy.Options
	issuerReady, err := tokenAuth(ctx, cfg, log, &opts)
	if err != nil {
		return err
	}
	if opts.Tokens, err = iamTokens(ctx, cfg, log, metrics); err != nil {
		return err
	}
	noteIAM(cfg, log)
	g, err := statementPolicies(ctx, cfg, log, metrics, &opts)
	if err != nil {
		return err
	}
	srv, err := proxy.New(cfg, metrics, log, opts)
	if err != nil {
		return err
	}
	health := telemetry.NewHealth(metrics, func(ctx context.Context) error {
		if issuerReady != nil {
			if err := issuerReady(); err != nil {
				return err
			}
		}
		// The same dial sessions make: TCP, SSLRequest and TLS verification.
		c, _, err := srv.Dialer().Dial(ctx, cfg.Backend.Addr())
		if err != nil {
			return err
		}
		return c.Close()
	})
	ln, err := srv.Listen(ctx, cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR %s: %w", cfg.ListenAddr, err)
	}
	return serve(ctx, cfg, log, srv, health, ln, nil, g)
}

// serve runs the health server and the proxy on ln (and the guardrails' g,
// when set) until ctx ends, then drains: beforeDrain (if any) runs first,
// the listener closes, /ready turns 503 and sessions get
// SHUTDOWN_DRAIN_TIMEOUT to finish; then g's reporter writes its queue.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, srv *proxy.Server, health *telemetry.Health,
	ln net.Listener, beforeDrain func(), g *policySet) error {
	if g != nil {
		g.start()
		defer func() {
			// After the sessions' drain, what the reporter holds gets the
			// drain time again (at least 2 s) to be written.
			ctx, cancel := context.WithTimeout(context.Background(), max(cfg.ShutdownDrainTimeout, 2*time.Second))
			defer cancel()
			g.close(ctx)
		}()
	}
	hln, err := net.Listen("tcp", cfg.HealthCheckAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("HEALTH_CHECK_ADDR %s: %w", cfg.HealthCheckAddr, err)
	}
	httpSrv := &http.Server{Handler: health.Handler(cfg.EnablePprof), ReadHeaderTimeout: 5 * time.Second}
	go httpSrv.Serve(hln)
	defer httpSrv.Close()

	// Sessions get their own context so that the drain, not the signal, ends them.
	sessCtx, cancelSessions := context.WithCancel(context.Background())
	defer cancelSessions()
	log.Info("pgproxy listening", "addr", ln.Addr().String(), "backend", cfg.Backend.String(),
		"health_addr", hln.Addr().String(), "tls", cfg.TLSEnabled, "token_auth", cfg.OIDC.Enabled)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(sessCtx, ln) }()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections, draining sessions", "active", srv.Active(), "timeout", cfg.ShutdownDrainTimeout)
	health.SetDraining()
	if beforeDrain != nil {
		beforeDrain()
	}
	ln.Close()
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownDrainTimeout)
	defer cancel()
	srv.Drain(drainCtx)
	log.Info("pgproxy stopped")
	if err := <-serveErr; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
