package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// asymmetricAlgs are the only algorithms ever accepted, whatever the issuer
// advertises: never "none", never HMAC (whose secret would be the public key).
var asymmetricAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Retry pacing for discovery while the issuer is unreachable.
const (
	retryInitial = time.Second
	retryMax     = 30 * time.Second
)

// Validator checks tokens presented as passwords. It is safe for concurrent
// use. Create it once with NewValidator; its background goroutine (discovery
// retries, periodic key refresh) stops when the context given to NewValidator
// ends.
type Validator struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	poke   chan struct{}

	mu    sync.RWMutex
	state *issuerState // nil until discovery and the first key download succeed
}

// issuerState is what discovery found.
type issuerState struct {
	issuer   string // the "iss" tokens must carry
	algs     []jose.SignatureAlgorithm
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// NewValidator validates cfg, builds the HTTPS client (system roots plus
// OIDC_CERT_PATH) and tries discovery once, for at most cfg.StartupTimeout.
// An unreachable issuer is not an error: the validator keeps retrying in the
// background with backoff, Ready reports false and Validate refuses with
// issuer_unavailable until it succeeds. A reachable issuer whose discovery
// document contradicts the configuration (issuer mismatch, no asymmetric
// algorithm) is an error.
func NewValidator(ctx context.Context, cfg Config, logger *slog.Logger) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client, err := newHTTPClient(cfg.CACertPath)
	if err != nil {
		return nil, &ConfigError{"OIDC_CERT_PATH", err.Error()}
	}
	v := &Validator{
		cfg:    cfg,
		log:    logger.With("component", "identity"),
		client: client,
		poke:   make(chan struct{}, 1),
	}
	if len(cfg.AllowedDatabases) == 0 {
		v.log.Warn("OIDC_ALLOWED_DATABASES is empty: token users may connect to any database")
	}
	if len(cfg.AllowedRoles) == 0 {
		v.log.Info("OIDC_ALLOWED_ROLES is empty: any valid token is accepted without a role check")
	}

	startCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	st, err := v.discover(startCtx)
	cancel()
	var cfgErr *ConfigError
	switch {
	case errors.As(err, &cfgErr):
		return nil, err
	case err != nil:
		v.log.Warn("OIDC issuer unreachable at start-up; retrying in the background",
			"discovery_url", cfg.DiscoveryURL, "error", err)
	default:
		v.setState(st)
		v.log.Info("OIDC issuer discovered", "issuer", st.issuer, "algorithms", st.algs)
	}
	go v.run(ctx)
	return v, nil
}

// Ready reports whether discovery succeeded and signing keys are loaded, i.e.
// whether Validate can accept a token. Wire it into /ready.
func (v *Validator) Ready() bool {
	st := v.current()
	return st != nil && st.keys.Loaded()
}

// Issuer returns the issuer tokens must come from, or "" before discovery.
func (v *Validator) Issuer() string {
	if st := v.current(); st != nil {
		return st.issuer
	}
	return ""
}

// current returns the discovered state, or nil.
func (v *Validator) current() *issuerState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.state
}

// setState publishes a successful discovery.
func (v *Validator) setState(st *issuerState) {
	v.mu.Lock()
	v.state = st
	v.mu.Unlock()
}

// run is the validator's background goroutine: discovery with backoff until
// it succeeds, then periodic key refresh.
func (v *Validator) run(ctx context.Context) {
	if v.current() == nil && !v.retryDiscovery(ctx) {
		return
	}
	v.refreshKeysPeriodically(ctx)
}

// retryDiscovery repeats discovery with exponential backoff (1 s doubling to
// 30 s, with jitter). A Validate call while not ready pokes it to try at
// once, but never sooner than JWKSMinRefreshInterval after the last attempt.
// It returns false when ctx ends first.
func (v *Validator) retryDiscovery(ctx context.Context) bool {
	backoff := retryInitial
	last := time.Now()
	for {
		if !v.waitForRetry(ctx, time.Now().Add(jitter(backoff)), last) {
			return false
		}
		last = time.Now()
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := v.discover(attemptCtx)
		cancel()
		if err == nil {
			v.setState(st)
			v.log.Info("OIDC issuer discovered", "issuer", st.issuer, "algorithms", st.algs)
			return true
		}
		level := slog.LevelWarn
		var cfgErr *ConfigError
		if errors.As(err, &cfgErr) {
			level = slog.LevelError
			backoff = retryMax
		}
		backoff = min(backoff*2, retryMax)
		v.log.Log(ctx, level, "OIDC discovery failed; will retry", "error", err, "retry_in", backoff)
	}
}

// waitForRetry sleeps until deadline, or until a poke arrives at least
// JWKSMinRefreshInterval after the last attempt. It returns false when ctx
// ends first.
func (v *Validator) waitForRetry(ctx context.Context, deadline, last time.Time) bool {
	for {
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
			return true
		case <-v.poke:
			timer.Stop()
			if time.Since(last) >= v.cfg.JWKSMinRefreshInterval {
				return true
			}
		}
	}
}

// refreshKeysPeriodically re-reads the key set every JWKSRefreshInterval so
// keys the issuer withdrew stop verifying. Failures keep the old keys.
func (v *Validator) refreshKeysPeriodically(ctx context.Context) {
	ticker := time.NewTicker(v.cfg.JWKSRefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		st := v.current()
		if err := st.keys.refresh(ctx); err != nil && !errors.Is(err, errRateLimited) {
			v.log.Warn("JWKS refresh failed; keeping the cached keys", "error", err)
		}
	}
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// discover reads the discovery document through go-oidc and downloads the
// key set once.
func (v *Validator) discover(ctx context.Context) (*issuerState, error) {
	base := strings.TrimSuffix(v.cfg.DiscoveryURL, "/.well-known/openid-configuration")
	octx := oidc.ClientContext(ctx, v.client)
	if v.cfg.IssuerOverride != "" {
		// Tokens carry the override, not the document's issuer (Entra ID v1).
		octx = oidc.InsecureIssuerURLContext(octx, v.cfg.IssuerOverride)
	}
	provider, err := oidc.NewProvider(octx, base)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, &ConfigError{"OIDC_DISCOVERY_URL", fmt.Sprintf(
				"the discovery document names issuer %q, not %q; set OIDC_ISSUER_OVERRIDE if tokens carry a different issuer",
				mismatch.Discovered, mismatch.Provided)}
		}
		return nil, err
	}
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&doc); err != nil {
		return nil, err
	}
	if doc.JWKSURI == "" {
		return nil, &ConfigError{"OIDC_DISCOVERY_URL", "the discovery document has no jwks_uri"}
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return nil, &ConfigError{"OIDC_DISCOVERY_URL", "jwks_uri: " + err.Error()}
	}
	algs := advertisedAsymmetric(doc.Algs)
	if len(algs) == 0 {
		return nil, &ConfigError{"OIDC_DISCOVERY_URL", fmt.Sprintf(
			"the issuer advertises no asymmetric signing algorithm (%v)", doc.Algs)}
	}
	issuer := doc.Issuer
	if v.cfg.IssuerOverride != "" {
		issuer = v.cfg.IssuerOverride
	}

	keys := newKeySet(doc.JWKSURI, v.client, algs, v.cfg.JWKSMinRefreshInterval)
	if err := keys.refresh(ctx); err != nil {
		return nil, err
	}
	algNames := make([]string, len(algs))
	for i, a := range algs {
		algNames[i] = string(a)
	}
	verifier := oidc.NewVerifier(issuer, keys, &oidc.Config{
		SupportedSigningAlgs: algNames,
		// Issuer, audience and time are checked by checkClaims, which has
		// multiple audiences, a configurable leeway and typed errors.
		SkipIssuerCheck:   true,
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
	})
	return &issuerState{issuer: issuer, algs: algs, keys: keys, verifier: verifier}, nil
}

// advertisedAsymmetric keeps the advertised algorithms that are asymmetric.
// An issuer that advertises nothing gets RS256, the one OIDC requires.
func advertisedAsymmetric(advertised []string) []jose.SignatureAlgorithm {
	if len(advertised) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256}
	}
	var out []jose.SignatureAlgorithm
	for _, a := range advertised {
		alg := jose.SignatureAlgorithm(a)
		if slices.Contains(asymmetricAlgs, alg) && !slices.Contains(out, alg) {
			out = append(out, alg)
		}
	}
	return out
}

// newHTTPClient trusts the system roots plus the PEM bundle at caPath.
func newHTTPClient(caPath string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caPath != "" {
		if err := appendCAFile(pool, caPath); err != nil {
			return nil, err
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = 10 * time.Second
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, nil
}

// Validate checks token (the password the client sent) and, when database is
// not empty, that token users may open it. An empty database skips that
// check: the caller then uses the database of PG_BACKEND_URL. Every refusal
// is an *Error whose Reason labels the failure metric and whose Message can
// be sent to the client. Validate does not log.
func (v *Validator) Validate(ctx context.Context, token, database string) (Identity, error) {
	if len(token) > MaxTokenBytes {
		return Identity{}, refuse(ReasonTokenTooLarge, nil,
			"token is too large (%d bytes, the limit is %d)", len(token), MaxTokenBytes)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return Identity{}, refuse(ReasonMalformedToken, nil, "empty password: a JWT was expected")
	}
	st := v.current()
	if st == nil {
		select {
		case v.poke <- struct{}{}:
		default:
		}
		return Identity{}, refuse(ReasonIssuerUnavailable, nil,
			"identity provider is unavailable; try again later")
	}
	if err := checkHeader(token, st.algs); err != nil {
		return Identity{}, err
	}

	outcome := &verifyOutcome{}
	idt, err := st.verifier.Verify(context.WithValue(ctx, outcomeKey{}, outcome), token)
	if err != nil {
		if outcome.err != nil {
			return Identity{}, outcome.err
		}
		return Identity{}, refuse(ReasonMalformedToken, err, "token claims are not well-formed")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, refuse(ReasonMalformedToken, err, "token claims are not well-formed")
	}
	return v.checkClaims(st, claims, database)
}

// checkHeader refuses tokens that are not compact JWS or whose alg is not
// one of algs, before any key is looked at.
func checkHeader(token string, algs []jose.SignatureAlgorithm) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return refuse(ReasonMalformedToken, nil, "password is not a JWT (expected three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return refuse(ReasonMalformedToken, err, "password is not a JWT (bad header encoding)")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return refuse(ReasonMalformedToken, err, "password is not a JWT (bad header)")
	}
	if !slices.Contains(algs, jose.SignatureAlgorithm(hdr.Alg)) {
		return refuse(ReasonUnsupportedAlgorithm, nil,
			"token algorithm %s is not accepted (accepted: %s)", quoteClaim(hdr.Alg), joinAlgs(algs))
	}
	if parts[2] == "" {
		return refuse(ReasonMalformedToken, nil, "token is not signed")
	}
	return nil
}

// joinAlgs renders algorithms for a message.
func joinAlgs(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
