package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// MaxClockLeeway bounds OIDC_CLOCK_LEEWAY.
const MaxClockLeeway = 5 * time.Minute

// OIDC is the token-authentication section: OIDC_AUTH and, only when it is
// true, the OIDC_* settings (otherwise they are neither read nor checked and
// the other fields stay zero). Package identity builds its validator's
// configuration from it.
type OIDC struct {
	// Enabled is OIDC_AUTH: clients authenticate with a JWT as the password
	// and the backend sees PG_BACKEND_URL's service account.
	Enabled bool
	// DiscoveryURL is OIDC_DISCOVERY_URL: the issuer's
	// .well-known/openid-configuration address, or the issuer URL itself.
	DiscoveryURL string
	// IssuerOverride is OIDC_ISSUER_OVERRIDE: the "iss" tokens carry when it
	// differs from the discovered issuer (Entra ID v1 tokens).
	IssuerOverride string
	// Audiences is OIDC_AUDIENCE, at least one.
	Audiences []string
	// AllowedRoles is OIDC_ALLOWED_ROLES; empty means no role check.
	AllowedRoles []string
	// RolesClaim is OIDC_ROLES_CLAIM: one more dot path read for roles.
	RolesClaim string
	// AllowedDatabases is OIDC_ALLOWED_DATABASES; empty means any.
	AllowedDatabases []string
	// IdentityClaims is OIDC_IDENTITY_CLAIMS: claims or dot paths tried in
	// order for the identity (never empty when Enabled).
	IdentityClaims []string
	// CACertPath is OIDC_CERT_PATH: a PEM bundle (at least one certificate)
	// trusted for the issuer's HTTPS besides the system roots.
	CACertPath string
	// ClockLeeway is OIDC_CLOCK_LEEWAY, 0 to MaxClockLeeway.
	ClockLeeway time.Duration
	// QueryComment is AUDIT_QUERY_COMMENT resolved: put the session's
	// application_name as a comment before every statement (auto: with
	// BACKEND_FLAVOR=redshift, whose stv_recents shows no application_name).
	QueryComment bool
}

// loadOIDC parses the token-authentication section; flavor is
// BACKEND_FLAVOR, already parsed (AUDIT_QUERY_COMMENT=auto follows it).
func loadOIDC(p *parser, flavor string) OIDC {
	o := OIDC{Enabled: p.bool("OIDC_AUTH")}
	if !o.Enabled {
		return o
	}
	o.DiscoveryURL = p.str("OIDC_DISCOVERY_URL")
	if o.DiscoveryURL == "" {
		p.fail("OIDC_DISCOVERY_URL", "is required when OIDC_AUTH=true (the issuer's …/.well-known/openid-configuration URL)")
	} else {
		p.issuerURL("OIDC_DISCOVERY_URL", o.DiscoveryURL)
	}
	if o.IssuerOverride = p.str("OIDC_ISSUER_OVERRIDE"); o.IssuerOverride != "" {
		p.issuerURL("OIDC_ISSUER_OVERRIDE", o.IssuerOverride)
	}
	if o.Audiences = SplitList(p.str("OIDC_AUDIENCE")); len(o.Audiences) == 0 {
		p.fail("OIDC_AUDIENCE", "is required when OIDC_AUTH=true: name at least one audience (client id) tokens must be issued for")
	}
	o.AllowedRoles = SplitList(p.str("OIDC_ALLOWED_ROLES"))
	if o.RolesClaim = p.str("OIDC_ROLES_CLAIM"); o.RolesClaim != "" && hasEmptySegment(o.RolesClaim) {
		p.fail("OIDC_ROLES_CLAIM", fmt.Sprintf("=%q has an empty path segment", o.RolesClaim))
	}
	o.AllowedDatabases = SplitList(p.str("OIDC_ALLOWED_DATABASES"))
	if o.IdentityClaims = SplitList(p.str("OIDC_IDENTITY_CLAIMS")); len(o.IdentityClaims) == 0 {
		o.IdentityClaims = SplitList(defaultOf("OIDC_IDENTITY_CLAIMS", p.agent))
	}
	for _, claim := range o.IdentityClaims {
		if hasEmptySegment(claim) {
			p.fail("OIDC_IDENTITY_CLAIMS", fmt.Sprintf(": %q has an empty path segment", claim))
		}
	}
	if o.CACertPath = p.str("OIDC_CERT_PATH"); o.CACertPath != "" {
		p.caBundle("OIDC_CERT_PATH", o.CACertPath)
	}
	o.ClockLeeway = p.leeway("OIDC_CLOCK_LEEWAY", MaxClockLeeway)
	mode := p.oneOf("AUDIT_QUERY_COMMENT", "auto", "on", "off")
	o.QueryComment = mode == "on" || (mode == "auto" && flavor == FlavorRedshift)
	return o
}

// CheckIssuerURL is the rule for an OIDC issuer's URLs (OIDC_DISCOVERY_URL,
// OIDC_ISSUER_OVERRIDE, and the jwks_uri discovery returns): https, or http
// to a loopback host only (local development), since keys fetched over plain
// HTTP could be swapped. The error does not repeat the URL.
func CheckIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	if u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("must use https (http is allowed only for localhost)")
	default:
		return errors.New("must use https")
	}
}

func (p *parser) issuerURL(name, raw string) {
	if err := CheckIssuerURL(raw); err != nil {
		p.fail(name, fmt.Sprintf("=%q %v", raw, err))
	}
}

// caBundle checks that path is a readable PEM file with at least one
// certificate.
func (p *parser) caBundle(name, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		p.fail(name, fmt.Sprintf("cannot be read: %v", err))
	} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
		p.fail(name, fmt.Sprintf("=%q holds no PEM certificate", path))
	}
}

// leeway parses whole seconds ("60") or a Go duration ("90s", "2m"), from 0
// to max.
func (p *parser) leeway(name string, max time.Duration) time.Duration {
	v := p.str(name)
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.ParseInt(v, 10, 64); nerr == nil || errors.Is(nerr, strconv.ErrRange) {
		// Whole seconds, compared before multiplying so that no value wraps.
		err = nil
		switch {
		case n < 0:
			d = -time.Second
		case nerr == nil && n <= int64(max/time.Second):
			d = time.Duration(n) * time.Second
		default:
			d = max + time.Second
		}
	}
	switch {
	case err != nil:
		p.fail(name, fmt.Sprintf("=%q is neither whole seconds nor a duration such as 90s", v))
	case d < 0:
		p.fail(name, fmt.Sprintf("=%q must not be negative", v))
	case d > max:
		p.fail(name, fmt.Sprintf("=%q is more than the maximum %v", v, max))
	default:
		return d
	}
	return 0
}

// hasEmptySegment reports whether a dot path such as realm_access.roles has
// an empty segment (".x", "x.", "a..b").
func hasEmptySegment(path string) bool {
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" {
			return true
		}
	}
	return false
}
