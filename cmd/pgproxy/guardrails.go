package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/auth"
	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/cache"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/filewatch"
	"github.com/pgproxy/pgproxy/userspace/llm"
	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/proxy"
	"github.com/pgproxy/pgproxy/userspace/reporter"
	"github.com/pgproxy/pgproxy/userspace/routing"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// guard is the running guardrails: the analysis, its decision cache and
// connections, the overrides watcher and the reporter.
type guard struct {
	cfg       *config.Config
	log       *slog.Logger
	m         *telemetry.Metrics // nil in pgproxy analyze
	analyzer  *analysis.Analyzer
	policy    *routing.Policy
	cache     *cache.Tiered
	pools     *backendPools
	reporter  *reporter.Reporter
	overrides *analysis.Overrides
	stop      chan struct{}
	wg        sync.WaitGroup
}

// newGuard builds the guardrails from the configuration; m may be nil
// (pgproxy analyze).
func newGuard(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics, parser *sqlparse.Parser, dialer *backend.Dialer, tokens backend.Tokens, agent *llm.Agent) (*guard, error) {
	g := &guard{cfg: cfg, log: log, m: m, stop: make(chan struct{})}
	gc := cfg.Guardrails
	th := analysis.Thresholds{MaxRows: float64(gc.MaxRows), MaxCost: float64(gc.MaxCost), MaxOffset: gc.MaxOffset}
	g.pools = &backendPools{cfg: cfg, dialer: dialer, tokens: tokens, thresholds: th, parser: parser, pools: map[string]*backendPool{}}

	hooks := cache.Hooks{}
	if m != nil {
		mg := m.Guardrails
		hooks.OnLookup = func(tier analysis.Source, hit bool) { mg.CacheLookup(string(tier), hit) }
		hooks.OnError = func(op string, err error) { mg.CacheErrors.WithLabelValues(op, cache.ErrorKind(err)).Inc() }
		hooks.OnAvailable = func(up bool) {
			if up {
				mg.ValkeyUp.Set(1)
				log.Info("decision cache: Valkey available")
			} else {
				mg.ValkeyUp.Set(0)
				log.Warn("decision cache: Valkey unavailable, using the in-process cache only")
			}
		}
	}
	if gc.ValkeyTLSSkipVerify {
		log.Warn("VALKEY_TLS_SKIP_VERIFY=true: the Valkey server's certificate is not checked (development only)")
	}
	co := cache.Options{MemorySize: gc.CacheSize, TTL: gc.CacheTTL, ValkeyURL: gc.ValkeyURL,
		TLSSkipVerify: gc.ValkeyTLSSkipVerify, Hooks: hooks}
	if gc.ValkeyURL != "" {
		if err := valkeyIAM(ctx, cfg, &co); err != nil {
			return nil, err
		}
	}
	var err error
	g.cache, err = cache.New(co)
	if err != nil {
		return nil, fmt.Errorf("VALKEY_URL: %w", err)
	}
	if gc.OverridesPath != "" {
		if g.overrides, err = analysis.LoadOverrides(gc.OverridesPath, parser); err != nil {
			return nil, fmt.Errorf("ANALYSIS_OVERRIDES_PATH: %w", err)
		}
		if m != nil {
			m.Guardrails.Overrides.Set(float64(g.overrides.Len()))
		}
	}
	g.analyzer = &analysis.Analyzer{Rules: analysis.Rules{Thresholds: th}, Overrides: g.overrides, Cache: g.cache,
		Backends: g.pools.get, Timeout: gc.Timeout, FailClosed: gc.FailClosed}
	if m != nil {
		mg := m.Guardrails
		g.analyzer.OnDecision = func(d analysis.Decision, took time.Duration) {
			mg.Decided(string(d.Verdict), string(d.Source), took.Seconds())
		}
	}
	g.analyzer.Model = newModelTier(cfg, log, agent, m == nil)
	if g.analyzer.Model != nil {
		g.analyzer.Model.OnAnswer = modelAnswers(log, m, func() *reporter.Reporter { return g.reporter }, gc.Mode)
	}
	g.analyzer.Init()
	exempt := map[string]bool{}
	for _, r := range gc.ExemptRoles {
		exempt[r] = true
	}
	g.policy = &routing.Policy{Mode: gc.Mode, Analyzer: g.analyzer, ExemptRoles: exempt, Parser: parser}
	if m != nil {
		g.policy.Routed = m.Guardrails.RoutedTo
		g.policy.OnReuse = m.Guardrails.Reused
	}
	return g, nil
}

// wire plugs the guardrails into the proxy: the policy, the issue log and
// reporter, the shunt node (and for passthrough sessions in shunt mode,
// password authentication by the proxy).
func (g *guard) wire(ctx context.Context, opts *proxy.Options) error {
	gc := g.cfg.Guardrails
	if gc.ReporterURL != "" {
		ropts := reporter.Options{URL: gc.ReporterURL, Hooks: reporterHooks(g.m, g.log)}
		if ctl := opts.DialControl; ctl != nil || gc.Reporter.IAM {
			cc, err := pgx.ParseConfig(gc.ReporterURL)
			if err != nil {
				return fmt.Errorf("REPORTER_DB_URL: %w", err)
			}
			if ctl != nil {
				// The agent's sockets are marked so that its interception
				// does not send them back to the proxy: the reporter's too.
				cc.DialFunc = (&net.Dialer{KeepAlive: 5 * time.Minute, Control: ctl}).DialContext
			}
			ropts.URL, ropts.Config = "", cc
			if gc.Reporter.IAM {
				// The token goes where pgx dials, verified as pgx reads the
				// URL (its last sslmode, ssl=, host=): TLS with the host
				// name checked, and no fallback.
				if cc.TLSConfig == nil || cc.TLSConfig.InsecureSkipVerify || len(cc.Fallbacks) > 0 {
					return errors.New("REPORTER_DB_URL: a reporter that logs in with an IAM token needs sslmode=verify-full " +
						"(as the connection reads the URL: TLS with the server's name verified, no fallback host or mode)")
				}
				ropts.BeforeConnect = backend.TokenLogin(opts.Tokens, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
			}
		}
		rep, err := reporter.New(ctx, ropts)
		if err != nil {
			return fmt.Errorf("REPORTER_DB_URL: %w", err)
		}
		g.reporter = rep
		mode := gc.Mode
		opts.Records = func(r *stmt.Record) {
			text := ""
			if gc.StoreRawQuery {
				text = r.SQL
			}
			rep.Metric(reporter.Metric{RecordedAt: r.Start.Add(r.Total), Fingerprint: r.Fingerprint, QueryText: text,
				Identity: r.Identity, User: r.User, Database: r.Database, Mode: mode, Action: r.Action.String(),
				Verdict: r.Verdict, DecisionSource: r.Source, Analysis: r.Decide, Backend: r.Backend, Total: r.Total,
				Rows: r.Rows, SQLState: r.SQLState, Node: r.Leg, ConnID: r.ConnID, LLM: r.LLM})
		}
	}
	g.policy.Issues = func(i routing.Issue) {
		g.log.Info("inefficient statement", "action", i.Action, "conn_id", i.ConnID, "database", i.Database,
			"fingerprint", i.Fingerprint, "check", i.Decision.Check, "source", string(i.Decision.Source), "reason", i.Decision.Reason)
		if g.reporter == nil {
			return
		}
		text := ""
		if gc.StoreRawQuery {
			text = i.SQL
		}
		d := i.Decision
		g.reporter.Issue(reporter.Issue{DetectedAt: i.At, Fingerprint: i.Fingerprint, QueryText: text, Identity: i.Identity,
			User: i.User, Database: i.Database, Verdict: string(d.Verdict), Reason: d.Reason, Suggestion: d.Suggestion,
			Check: d.Check, Evidence: d.Evidence, Source: string(d.Source), Origin: string(d.Origin), Action: i.Action,
			ConnID: i.ConnID, Model: d.Model})
	}
	opts.Policies = append(opts.Policies, g.policy)
	if gc.Mode == config.ModeShunt {
		sh := gc.Shunt
		if sh.User == "" {
			sh.User, sh.Password = g.cfg.Backend.User, g.cfg.Backend.Password
		}
		opts.Shunt = &sh
		if opts.Authenticator == nil {
			// Passthrough in shunt mode: the proxy takes the client's
			// password itself, so it can log in to the shunt node as the
			// same user.
			opts.Authenticator = auth.Password{}
			if !g.cfg.TLSEnabled {
				g.log.Warn("PROXY_MODE=shunt asks clients for their password in cleartext (the proxy logs in to both nodes with it) and TLS_ENABLED is false: passwords travel in clear to the proxy")
			}
		}
	}
	return nil
}

// start runs the overrides watcher (a change of the file, or SIGHUP).
func (g *guard) start() {
	if g.overrides == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	g.wg.Add(1)
	go g.watchOverrides(hup)
}

// watchOverrides reloads the overrides when the file changes (told by the
// kernel's file events, see filewatch) or on SIGHUP; a broken file keeps the
// previous overrides.
func (g *guard) watchOverrides(hup chan os.Signal) {
	m := g.m
	defer g.wg.Done()
	defer signal.Stop(hup)
	changes := filewatch.Watch(g.cfg.Guardrails.OverridesPath, g.stop, g.log)
	for {
		force := false
		select {
		case <-g.stop:
			return
		case <-hup:
			force = true
		case <-changes:
		}
		if !force && !g.overrides.Changed() {
			continue
		}
		changed, err := g.overrides.Reload()
		switch {
		case err != nil:
			g.log.Error("overrides not reloaded; the previous ones stay in force", "err", err)
			if m != nil {
				m.Guardrails.OverrideReloads.WithLabelValues("error").Inc()
			}
		case changed:
			g.log.Info("overrides reloaded", "path", g.cfg.Guardrails.OverridesPath, "overrides", g.overrides.Len())
			if m != nil {
				m.Guardrails.OverrideReloads.WithLabelValues("ok").Inc()
				m.Guardrails.Overrides.Set(float64(g.overrides.Len()))
			}
		}
	}
}

// close flushes the reporter within ctx's deadline and closes the rest.
func (g *guard) close(ctx context.Context) {
	close(g.stop)
	g.wg.Wait()
	if g.reporter != nil {
		if err := g.reporter.Close(ctx); err != nil {
			g.log.Warn("reporter records lost at shutdown", "err", err)
		}
	}
	g.cache.Close()
	g.pools.close()
}

func reporterHooks(m *telemetry.Metrics, log *slog.Logger) reporter.Hooks {
	if m == nil {
		return reporter.Hooks{}
	}
	mg := m.Guardrails
	var lastLog time.Time
	var mu sync.Mutex
	return reporter.Hooks{
		QueueDepth: func(t reporter.Table, n int) { mg.ReporterQueue.WithLabelValues(string(t)).Set(float64(n)) },
		Written:    func(t reporter.Table, n int) { mg.ReporterWritten.WithLabelValues(string(t)).Add(float64(n)) },
		Dropped: func(t reporter.Table, r reporter.DropReason, n int) {
			mg.ReporterDropped.WithLabelValues(string(t), string(r)).Add(float64(n))
		},
		WriteError: func(err error) {
			mg.ReporterErrors.Inc()
			mu.Lock()
			defer mu.Unlock()
			if time.Since(lastLog) > 30*time.Second { // once per outage, not per retry
				lastLog = time.Now()
				log.Warn("reporter cannot write; records wait in its queue", "err", err)
			}
		},
	}
}

// backendPools holds the proxy's own connection pools, table facts and
// planner per database server and database.
type backendPools struct {
	cfg        *config.Config
	dialer     *backend.Dialer
	tokens     backend.Tokens
	thresholds analysis.Thresholds
	parser     *sqlparse.Parser
	mu         sync.Mutex
	pools      map[string]*backendPool
}

type backendPool struct {
	pool *pgxpool.Pool
	be   *analysis.Backend
}

// maxPools bounds the databases the analysis keeps connections to.
const maxPools = 64

// get returns the analysis backend of a database on a server, creating its
// pool (at most 4 connections, logged in with PG_BACKEND_URL's user).
func (b *backendPools) get(ctx context.Context, addr, database string) (*analysis.Backend, error) {
	addr, database = ownTarget(b.cfg, addr, database)
	key := addr + "/" + database
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.pools[key]; ok {
		return p.be, nil
	}
	if len(b.pools) >= maxPools {
		return nil, fmt.Errorf("too many databases analysed at once (%d)", maxPools)
	}
	pool, err := ownPool(ctx, b.cfg, b.dialer, b.tokens, addr, database, "pgproxy-analysis", 4)
	if err != nil {
		return nil, err
	}
	flavor, err := backendFlavor(ctx, b.cfg, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	be := &analysis.Backend{
		Flavor: flavor,
		Facts:  metadata.New(pool, metadata.Options{TTL: b.cfg.Guardrails.MetadataTTL, Redshift: flavor == analysis.FlavorRedshift}),
		Planner: analysis.NewPlanner(pool, analysis.PlannerOptions{Thresholds: b.thresholds, StatementTimeout: b.cfg.Guardrails.Timeout,
			Parser: b.parser, Flavor: flavor}),
	}
	b.pools[key] = &backendPool{pool: pool, be: be}
	return be, nil
}

// backendFlavor is BACKEND_FLAVOR's flavour, or with auto the one the
// server's version() names (Redshift's says "Redshift").
func backendFlavor(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool) (string, error) {
	switch cfg.Flavor {
	case config.FlavorRedshift:
		return analysis.FlavorRedshift, nil
	case config.FlavorAuto:
	default:
		return analysis.FlavorPostgres, nil
	}
	var version string
	if err := pool.QueryRow(ctx, "SELECT version()", pgx.QueryExecModeSimpleProtocol).Scan(&version); err != nil {
		return "", fmt.Errorf("BACKEND_FLAVOR=auto: reading version(): %w", err)
	}
	if strings.Contains(version, "Redshift") {
		return analysis.FlavorRedshift, nil
	}
	return analysis.FlavorPostgres, nil
}

// ownTarget fills an empty server address or database with PG_BACKEND_URL's.
func ownTarget(cfg *config.Config, addr, database string) (string, string) {
	if addr == "" {
		addr = cfg.Backend.Addr()
	}
	if database == "" {
		database = cfg.Backend.Database
	}
	return addr, database
}

// ownPool opens the proxy's own pool to a database: PG_BACKEND_URL's
// account through the proxy's dialer, at most maxConns connections, named
// app in pg_stat_activity.
func ownPool(ctx context.Context, cfg *config.Config, dialer *backend.Dialer, tokens backend.Tokens, addr, database, app string, maxConns int32) (*pgxpool.Pool, error) {
	pcfg, err := backend.PoolConfig(cfg.Backend, dialer, addr, database, app, tokens)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns, pcfg.MinConns = maxConns, 0
	pcfg.MaxConnIdleTime = 5 * time.Minute
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	return pgxpool.NewWithConfig(ctx, pcfg)
}

func (b *backendPools) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, p := range b.pools {
		p.pool.Close()
		delete(b.pools, k)
	}
}
