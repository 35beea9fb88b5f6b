package config

import (
	"fmt"
	"net/url"
	"os"
	"time"
)

// Guardrails is the query-analysis section (ANALYSIS_*, PROXY_MODE, the
// shunt node, the reporter, the decision cache).
type Guardrails struct {
	Enabled bool
	// Mode is blocking, non-blocking or shunt.
	Mode string
	// Shunt is SHUNT_NODE_URL, parsed (Host empty when unset).
	Shunt    BackendURL
	ShuntURL string
	// ReporterURL is REPORTER_DB_URL ("" for no reporter), checked to be a
	// PostgreSQL URL with a user; Reporter is it parsed (Host empty when
	// unset; IAM with PG_IAM_AUTH and no password).
	ReporterURL   string
	Reporter      BackendURL
	StoreRawQuery bool
	// ValkeyURL is VALKEY_URL ("" for the in-process cache only).
	ValkeyURL           string
	ValkeyTLSSkipVerify bool
	MetadataTTL         time.Duration
	CacheTTL            time.Duration
	CacheSize           int
	Timeout             time.Duration
	// FailClosed is ANALYSIS_FAIL_MODE=closed.
	FailClosed    bool
	MaxRows       int64
	MaxCost       int64
	MaxOffset     int64
	ExemptRoles   []string
	OverridesPath string
}

// Proxy modes.
const (
	ModeBlocking    = "blocking"
	ModeNonBlocking = "non-blocking"
	ModeShunt       = "shunt"
)

// loadGuardrails parses the guardrails section.
func loadGuardrails(p *parser) Guardrails {
	g := Guardrails{
		Enabled:             p.bool("ANALYSIS_ENABLED"),
		Mode:                p.oneOf("PROXY_MODE", ModeBlocking, ModeNonBlocking, ModeShunt),
		ShuntURL:            p.str("SHUNT_NODE_URL"),
		ReporterURL:         p.str("REPORTER_DB_URL"),
		StoreRawQuery:       p.bool("STORE_RAW_QUERY"),
		ValkeyURL:           p.str("VALKEY_URL"),
		ValkeyTLSSkipVerify: p.bool("VALKEY_TLS_SKIP_VERIFY"),
		MetadataTTL:         p.dur("METADATA_CACHE_TTL", time.Second),
		CacheTTL:            p.dur("ANALYSIS_CACHE_TTL", time.Second),
		CacheSize:           p.int("ANALYSIS_CACHE_SIZE", 1, 10_000_000),
		Timeout:             p.dur("ANALYSIS_TIMEOUT", time.Millisecond),
		FailClosed:          p.oneOf("ANALYSIS_FAIL_MODE", "open", "closed") == "closed",
		MaxRows:             int64(p.int("ANALYSIS_MAX_ROWS", 1, 1<<50)),
		MaxCost:             int64(p.int("ANALYSIS_MAX_COST", 0, 1<<50)),
		MaxOffset:           int64(p.int("ANALYSIS_MAX_OFFSET", 1, 1<<50)),
		ExemptRoles:         SplitList(p.str("ANALYSIS_EXEMPT_ROLES")),
		OverridesPath:       p.str("ANALYSIS_OVERRIDES_PATH"),
	}
	if g.ShuntURL != "" {
		if b, err := ParseBackendURL(g.ShuntURL); err != nil {
			p.fail("SHUNT_NODE_URL", err.Error())
		} else {
			g.Shunt = b
		}
	}
	if g.ReporterURL != "" {
		if b, err := ParseBackendURL(g.ReporterURL); err != nil {
			p.fail("REPORTER_DB_URL", err.Error())
		} else if b.User == "" {
			p.fail("REPORTER_DB_URL", "needs a user (the reporter logs in itself), e.g. postgres://reporter:secret@host/db")
		} else {
			g.Reporter = b
		}
	}
	if g.ValkeyURL != "" {
		if u, err := url.Parse(g.ValkeyURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("VALKEY_URL", fmt.Sprintf("=%q must be a redis:// or rediss:// URL with a host", g.ValkeyURL))
		}
	}
	if !g.Enabled {
		return g
	}
	if g.Mode == ModeShunt && g.ShuntURL == "" {
		p.fail("SHUNT_NODE_URL", "is required with PROXY_MODE=shunt")
	}
	if g.OverridesPath != "" {
		if _, err := os.Stat(g.OverridesPath); err != nil {
			p.fail("ANALYSIS_OVERRIDES_PATH", fmt.Sprintf("cannot be read: %v (create an empty file to start without overrides)", err))
		}
	}
	return g
}
