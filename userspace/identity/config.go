package identity

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pgproxy/pgproxy/userspace/config"
)

// Defaults.
const (
	// DefaultClockLeeway is the tolerance for clock skew between the proxy
	// and the issuer when checking exp, nbf and iat.
	DefaultClockLeeway = 60 * time.Second
	// MaxClockLeeway bounds OIDC_CLOCK_LEEWAY (package config's rule).
	MaxClockLeeway = config.MaxClockLeeway
	// DefaultJWKSMinRefreshInterval is the rate limit on JWKS downloads: at
	// most one per interval, whatever triggers it (unknown kid, periodic
	// refresh, retry after an outage).
	DefaultJWKSMinRefreshInterval = 10 * time.Second
	// DefaultJWKSRefreshInterval is how often the key set is re-read even
	// when no unknown kid shows up, so withdrawn keys stop being accepted.
	DefaultJWKSRefreshInterval = 15 * time.Minute
	// DefaultStartupTimeout bounds the first discovery attempt in
	// NewValidator; after that, discovery continues in the background.
	DefaultStartupTimeout = 5 * time.Second
	// MaxTokenBytes is the largest token Validate accepts (16 KiB).
	MaxTokenBytes = 16 << 10
)

// DefaultIdentityClaims is the default order of claims tried for the
// identity shown in application_name.
var DefaultIdentityClaims = []string{"email", "upn", "preferred_username", "sub"}

// Config configures a Validator. ConfigFromOIDC fills it from the OIDC
// section package config parsed and validated. Zero durations take the
// defaults above, except ClockLeeway: zero means no leeway (package config
// defaults OIDC_CLOCK_LEEWAY to DefaultClockLeeway).
type Config struct {
	// DiscoveryURL is OIDC_DISCOVERY_URL: the issuer's
	// .well-known/openid-configuration address, or the issuer URL itself.
	DiscoveryURL string
	// IssuerOverride is OIDC_ISSUER_OVERRIDE: the "iss" tokens must carry,
	// when it differs from the discovered issuer (Entra ID v1 tokens carry
	// https://sts.windows.net/<tenant>/).
	IssuerOverride string
	// Audiences is OIDC_AUDIENCE: a token is accepted when its "aud"
	// contains any of them. Required.
	Audiences []string
	// AllowedRoles is OIDC_ALLOWED_ROLES: the token must carry at least one
	// of them. Empty means no role check.
	AllowedRoles []string
	// RolesClaim is OIDC_ROLES_CLAIM: an extra dot-separated claim path
	// (e.g. "custom.path.roles") read for roles, besides Keycloak's
	// realm_access.roles and resource_access.<audience>.roles, and the
	// top-level roles and groups claims.
	RolesClaim string
	// AllowedDatabases is OIDC_ALLOWED_DATABASES: the databases a token
	// user may ask for. Empty means any.
	AllowedDatabases []string
	// IdentityClaims is OIDC_IDENTITY_CLAIMS: claims (or dot paths) tried in
	// order for the identity; default DefaultIdentityClaims.
	IdentityClaims []string
	// CACertPath is OIDC_CERT_PATH: a PEM bundle trusted for the issuer's
	// HTTPS in addition to the system roots.
	CACertPath string
	// ClockLeeway is OIDC_CLOCK_LEEWAY (seconds or a Go duration, at most
	// MaxClockLeeway): exp may be this far in the past, nbf and iat this far
	// in the future.
	ClockLeeway time.Duration
	// JWKSMinRefreshInterval rate-limits JWKS downloads; default
	// DefaultJWKSMinRefreshInterval.
	JWKSMinRefreshInterval time.Duration
	// JWKSRefreshInterval is the periodic key refresh; default
	// DefaultJWKSRefreshInterval.
	JWKSRefreshInterval time.Duration
	// StartupTimeout bounds the first discovery attempt; default
	// DefaultStartupTimeout.
	StartupTimeout time.Duration
	// Now is the clock for token times (exp, nbf, iat); nil means time.Now.
	// For tests. The JWKS rate limit always runs on the real clock.
	Now func() time.Time
}

// ConfigError names the setting that is wrong.
type ConfigError struct {
	Var string
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

// ConfigFromOIDC builds the validator's configuration from the OIDC
// section of config.Load, which has parsed and checked every OIDC_*
// variable. The rate limits, refresh intervals and clock take their
// defaults.
func ConfigFromOIDC(o config.OIDC) Config {
	return Config{
		DiscoveryURL:     o.DiscoveryURL,
		IssuerOverride:   o.IssuerOverride,
		Audiences:        o.Audiences,
		AllowedRoles:     o.AllowedRoles,
		RolesClaim:       o.RolesClaim,
		AllowedDatabases: o.AllowedDatabases,
		IdentityClaims:   o.IdentityClaims,
		CACertPath:       o.CACertPath,
		ClockLeeway:      o.ClockLeeway,
	}
}

// Validate checks the configuration (NewValidator calls it; a Config from
// ConfigFromOIDC passes, since package config applies the same rules first
// and reports them at start-up). Errors are *ConfigError naming the
// environment variable that corresponds to the bad field.
func (c Config) Validate() error {
	if c.DiscoveryURL == "" {
		return &ConfigError{"OIDC_DISCOVERY_URL", "required when OIDC_AUTH is on"}
	}
	if err := checkURL(c.DiscoveryURL); err != nil {
		return &ConfigError{"OIDC_DISCOVERY_URL", err.Error()}
	}
	if c.IssuerOverride != "" {
		if err := checkURL(c.IssuerOverride); err != nil {
			return &ConfigError{"OIDC_ISSUER_OVERRIDE", err.Error()}
		}
	}
	if len(c.Audiences) == 0 {
		return &ConfigError{"OIDC_AUDIENCE", "required: name at least one audience (client id) tokens must be issued for"}
	}
	if c.RolesClaim != "" {
		for _, seg := range strings.Split(c.RolesClaim, ".") {
			if seg == "" {
				return &ConfigError{"OIDC_ROLES_CLAIM", fmt.Sprintf("%q has an empty path segment", c.RolesClaim)}
			}
		}
	}
	for _, name := range c.IdentityClaims {
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
			return &ConfigError{"OIDC_IDENTITY_CLAIMS", fmt.Sprintf("%q has an empty path segment", name)}
		}
	}
	if c.CACertPath != "" {
		if err := appendCAFile(x509.NewCertPool(), c.CACertPath); err != nil {
			return &ConfigError{"OIDC_CERT_PATH", err.Error()}
		}
	}
	if c.ClockLeeway > MaxClockLeeway {
		return &ConfigError{"OIDC_CLOCK_LEEWAY", fmt.Sprintf("%s is more than the maximum %s", c.ClockLeeway, MaxClockLeeway)}
	}
	if c.ClockLeeway < 0 {
		return &ConfigError{"OIDC_CLOCK_LEEWAY", "must not be negative"}
	}
	return nil
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.JWKSMinRefreshInterval <= 0 {
		c.JWKSMinRefreshInterval = DefaultJWKSMinRefreshInterval
	}
	if c.JWKSRefreshInterval <= 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	if len(c.IdentityClaims) == 0 {
		c.IdentityClaims = DefaultIdentityClaims
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// checkURL applies package config's rule for issuer URLs (https, or http to
// localhost only) to URLs that come from discovery as well.
func checkURL(raw string) error {
	if err := config.CheckIssuerURL(raw); err != nil {
		return fmt.Errorf("%q %w", raw, err)
	}
	return nil
}

// appendCAFile adds the certificates of a PEM bundle to pool; the bundle
// must hold at least one.
func appendCAFile(pool *x509.CertPool, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
