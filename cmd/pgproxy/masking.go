package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/filewatch"
	"github.com/pgproxy/pgproxy/userspace/llm"
	"github.com/pgproxy/pgproxy/userspace/masking"
	"github.com/pgproxy/pgproxy/userspace/masking/generate"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
)

// maskingSet is the running data masking: the policy, the proxy's own
// catalog connections and the watcher of the masking file.
type maskingSet struct {
	cfg    *config.Config
	log    *slog.Logger
	m      *telemetry.Metrics
	policy *masking.Policy
	dialer *backend.Dialer
	tokens backend.Tokens

	mu    sync.Mutex
	pools map[string]*pgxpool.Pool

	modTime time.Time
	size    int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

// newMasking loads the masking file and checks it against the default
// database's catalog: a mask that cannot produce its column's type, or a
// table or column that does not exist, stops start-up.
func newMasking(ctx context.Context, cfg *config.Config, log *slog.Logger, m *telemetry.Metrics, dialer *backend.Dialer, tokens backend.Tokens, agent *llm.Agent) (*maskingSet, error) {
	mc := cfg.Masking
	file, err := masking.Load(mc.ConfigPath, mc.HMACKey)
	if err != nil {
		return nil, fmt.Errorf("MASKING_CONFIG_PATH: %w", err)
	}
	ms := &maskingSet{cfg: cfg, log: log, m: m, dialer: dialer, tokens: tokens, pools: map[string]*pgxpool.Pool{}, stop: make(chan struct{})}
	ms.noteFile()
	ms.policy = masking.NewPolicy(file, ms.connect, cfg.Guardrails.MetadataTTL, log)
	if agent != nil {
		// At run time the model is shown the shapes of the values only.
		ms.policy.Infer = &generate.Inferrer{Model: &generate.Model{Agent: agent, Timeout: cfg.LLM.Timeout}}
	}
	if err := ms.fits(file); err != nil {
		return nil, fmt.Errorf("MASKING_CONFIG_PATH: %w", err)
	}
	if m != nil {
		mm := m.Masking
		mm.Tables.Set(float64(len(file.Tables)))
		ms.policy.Hooks = masking.Hooks{
			Decided: mm.Decided,
			CatalogLoaded: func(_ string, _ time.Duration, err error) {
				if err != nil {
					mm.CatalogLoads.WithLabelValues("error").Inc()
				} else {
					mm.CatalogLoads.WithLabelValues("ok").Inc()
				}
			},
			WallMasked: func(n int) { mm.WallMasked.Add(float64(n)) },
		}
	}
	wait := 15 * time.Second
	if file.UnknownTable == masking.LLMInference {
		wait = 2 * time.Minute // the tables the file does not name are judged first
	}
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cat, err := ms.policy.Catalog(cctx, cfg.Backend.Addr(), cfg.Backend.Database)
	switch {
	case err != nil:
		// The database may come up later: statements are refused until its
		// catalog can be read.
		log.Warn("masking: the default database's catalog cannot be read yet; statements are refused until it can", "err", err)
	case len(cat.Problems) > 0:
		ms.close()
		return nil, fmt.Errorf("MASKING_CONFIG_PATH does not fit database %s: %w", cfg.Backend.Database, errors.Join(cat.Problems...))
	}
	log.Info("masking on", "path", mc.ConfigPath, "tables", len(file.Tables), "unknown_tables", file.UnknownTable,
		"unmasked_roles", len(file.UnmaskedRoles), "hmac_key", mc.HMACKey != nil)
	return ms, nil
}

// connect returns the catalog pool of a database (PG_BACKEND_URL's account,
// at most 2 connections).
func (ms *maskingSet) connect(ctx context.Context, addr, database string) (masking.Querier, error) {
	addr, database = ownTarget(ms.cfg, addr, database)
	key := addr + "/" + database
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if p, ok := ms.pools[key]; ok {
		return p, nil
	}
	if len(ms.pools) >= maxPools {
		return nil, fmt.Errorf("too many databases masked at once (%d)", maxPools)
	}
	pool, err := ownPool(ctx, ms.cfg, ms.dialer, ms.tokens, addr, database, "pgproxy-masking", 2)
	if err != nil {
		return nil, err
	}
	ms.pools[key] = pool
	return pool, nil
}

// start runs the watcher of the masking file (a change, or SIGHUP).
func (ms *maskingSet) start() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ms.wg.Add(1)
	go ms.watch(hup)
}

func (ms *maskingSet) noteFile() {
	if fi, err := os.Stat(ms.cfg.Masking.ConfigPath); err == nil {
		ms.modTime, ms.size = fi.ModTime(), fi.Size()
	}
}

// watch re-reads the masking file when it changes (told by the kernel's file
// events, see filewatch) or on SIGHUP; a broken file keeps the previous
// configuration.
func (ms *maskingSet) watch(hup chan os.Signal) {
	defer ms.wg.Done()
	defer signal.Stop(hup)
	path := ms.cfg.Masking.ConfigPath
	changes := filewatch.Watch(path, ms.stop, ms.log)
	for {
		select {
		case <-ms.stop:
			return
		case <-hup:
		case <-changes:
			fi, err := os.Stat(path)
			if err == nil && fi.ModTime().Equal(ms.modTime) && fi.Size() == ms.size {
				continue
			}
		}
		ms.noteFile()
		file, err := masking.Load(path, ms.cfg.Masking.HMACKey)
		if err != nil {
			ms.log.Error("masking configuration not reloaded; the previous one stays in force", "err", err)
			if ms.m != nil {
				ms.m.Masking.Reloads.WithLabelValues("error").Inc()
			}
			continue
		}
		if err := ms.fits(file); err != nil {
			ms.log.Error("masking configuration not reloaded; the previous one stays in force", "err", err)
			if ms.m != nil {
				ms.m.Masking.Reloads.WithLabelValues("error").Inc()
			}
			continue
		}
		ms.policy.SetConfig(file)
		ms.log.Info("masking configuration reloaded", "path", path, "tables", len(file.Tables))
		if ms.m != nil {
			ms.m.Masking.Reloads.WithLabelValues("ok").Inc()
			ms.m.Masking.Tables.Set(float64(len(file.Tables)))
		}
	}
}

// fits refuses a file that asks for what the proxy was not given: the
// inference of unnamed tables without a language model.
func (ms *maskingSet) fits(file *masking.Config) error {
	if file.UnknownTable == masking.LLMInference && ms.policy.Infer == nil {
		return fmt.Errorf("%s: unknown_table_behavior llm_inference needs a language model: set LLM_PROVIDER and its variables (see the AI tier), or use passthrough", file.Path)
	}
	return nil
}

func (ms *maskingSet) close() {
	select {
	case <-ms.stop:
	default:
		close(ms.stop)
	}
	ms.wg.Wait()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for k, p := range ms.pools {
		p.Close()
		delete(ms.pools, k)
	}
}

// maskingSettings are the settings masking relies on that no statement
// shows it: a client may not choose them in its startup packet, and the
// server must report standard_conforming_strings on (a role or database
// default could turn it off; with it off the proxy would read string
// literals otherwise than the server). SET of them is refused by the
// masking policy itself.
func maskingSettings() *session.SettingsGuard {
	return &session.SettingsGuard{
		Fixed:    []string{"standard_conforming_strings", "client_min_messages", "debug_print_"},
		Required: map[string]string{"standard_conforming_strings": "on"},
		Why:      "data masking is on",
	}
}
