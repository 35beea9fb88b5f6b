package identity

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pgproxy/pgproxy/userspace/config"
)

// Defaults.
const (
	// DefaultClockLeeway is the tolerance for clock skew between the proxy
	// and the issuer when checking exp, nbf and iat.
	DefaultClockLeeway = 60 * time.Second
	// MaxClockLeeway bounds OIDC_CLOCK_LEEWAY.
	MaxClockLeeway = 5 * time.Minute
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

// Config configures a Validator. ConfigFromEnv fills it from OIDC_*
// variables. Zero durations take the defaults above, except ClockLeeway:
// ConfigFromEnv sets DefaultClockLeeway when OIDC_CLOCK_LEEWAY is unset, and
// zero means no leeway.
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
	// in the future. ConfigFromEnv defaults it to DefaultClockLeeway.
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

// ConfigFromEnv reads and validates the OIDC_* variables through getenv
// (os.Getenv, or a lookup that also sees a .env file). Call it only when
// OIDC_AUTH is on. Errors are *ConfigError naming the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DiscoveryURL:     strings.TrimSpace(getenv("OIDC_DISCOVERY_URL")),
		IssuerOverride:   strings.TrimSpace(getenv("OIDC_ISSUER_OVERRIDE")),
		Audiences:        config.SplitList(getenv("OIDC_AUDIENCE")),
		AllowedRoles:     config.SplitList(getenv("OIDC_ALLOWED_ROLES")),
		RolesClaim:       strings.TrimSpace(getenv("OIDC_ROLES_CLAIM")),
		AllowedDatabases: config.SplitList(getenv("OIDC_ALLOWED_DATABASES")),
		IdentityClaims:   config.SplitList(getenv("OIDC_IDENTITY_CLAIMS")),
		CACertPath:       strings.TrimSpace(getenv("OIDC_CERT_PATH")),
	}
	if v := strings.TrimSpace(getenv("OIDC_CLOCK_LEEWAY")); v != "" {
		d, err := parseDuration(v)
		if err != nil {
			return Config{}, &ConfigError{"OIDC_CLOCK_LEEWAY", err.Error()}
		}
		c.ClockLeeway = d
	} else {
		c.ClockLeeway = DefaultClockLeeway
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the configuration. Errors are *ConfigError naming the
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

// checkURL accepts https URLs, and http only to a loopback host (local
// development), since keys fetched over plain HTTP could be swapped.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http is allowed only for localhost)", raw)
	default:
		return fmt.Errorf("%q must use https", raw)
	}
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

// parseDuration accepts a Go duration ("90s", "2m") or whole seconds ("60").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q must not be negative", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither seconds nor a duration like 90s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	return d, nil
}
