package oidcissuer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Options configures an Issuer. The zero value gives a Keycloak-like realm at
// /realms/test with one RS256 and one ES256 key.
type Options struct {
	// Path is the issuer's path below the server root. Default "/realms/test".
	Path string
	// Algorithms is advertised as id_token_signing_alg_values_supported.
	// Default RS256, ES256 and HS256: Keycloak advertises HMAC algorithms
	// too, and a validator must still refuse them for bearer tokens.
	Algorithms []string
	// KeyAlgorithms lists the keys created at start, one per algorithm.
	// Default RS256 and ES256.
	KeyAlgorithms []string
	// DocumentIssuer, when set, is the "issuer" in the discovery document
	// instead of the issuer URL, as Entra ID's v1 discovery document does
	// (https://sts.windows.net/<tenant>/).
	DocumentIssuer string
}

// Issuer is a running local OIDC issuer. Its methods are safe for concurrent
// use.
type Issuer struct {
	ca   *CA
	path string
	algs []string
	doc  string

	mu      sync.Mutex
	addr    string       // fixed after the first Start so URLs survive Stop/Start
	srv     *http.Server // nil while stopped
	keys    []*signingKey
	active  map[jose.SignatureAlgorithm]*signingKey
	nextKID int

	jwksRequests      atomic.Int64
	discoveryRequests atomic.Int64
	jwksFailing       atomic.Bool
}

// New creates the issuer, its test CA and keys, and starts serving on a free
// loopback port.
func New(opts Options) (*Issuer, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, err
	}
	iss := &Issuer{
		ca:     ca,
		path:   "/" + strings.Trim(opts.Path, "/"),
		algs:   opts.Algorithms,
		doc:    opts.DocumentIssuer,
		active: make(map[jose.SignatureAlgorithm]*signingKey),
	}
	if opts.Path == "" {
		iss.path = "/realms/test"
	}
	if len(iss.algs) == 0 {
		iss.algs = []string{"RS256", "ES256", "HS256"}
	}
	keyAlgs := opts.KeyAlgorithms
	if len(keyAlgs) == 0 {
		keyAlgs = []string{"RS256", "ES256"}
	}
	for _, alg := range keyAlgs {
		if _, err := iss.Rotate(alg, true); err != nil {
			return nil, err
		}
	}
	if err := iss.Start(); err != nil {
		return nil, err
	}
	return iss, nil
}

// URL is the issuer identifier, e.g. https://127.0.0.1:43210/realms/test.
func (i *Issuer) URL() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return "https://" + i.addr + i.path
}

// DiscoveryURL is the address of the discovery document.
func (i *Issuer) DiscoveryURL() string {
	return i.URL() + "/.well-known/openid-configuration"
}

// JWKSURL is the address of the key set advertised as jwks_uri.
func (i *Issuer) JWKSURL() string {
	return i.URL() + "/protocol/openid-connect/certs"
}

// Addr is the host:port the issuer listens on.
func (i *Issuer) Addr() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.addr
}

// CA returns the issuer's test CA.
func (i *Issuer) CA() *CA { return i.ca }

// CAPEM returns the test CA certificate in PEM form.
func (i *Issuer) CAPEM() []byte { return i.ca.PEM() }

// CertPool returns a pool holding only the test CA.
func (i *Issuer) CertPool() *x509.CertPool { return i.ca.Pool() }

// WriteCAFile writes the CA certificate to dir/oidc-ca.pem and returns the
// path, for OIDC_CERT_PATH.
func (i *Issuer) WriteCAFile(dir string) (string, error) { return i.ca.WriteFile(dir) }

// HTTPClient returns a client that trusts the test CA.
func (i *Issuer) HTTPClient() *http.Client { return i.ca.HTTPClient() }

// JWKSRequests counts requests to the JWKS endpoint since the issuer was made.
func (i *Issuer) JWKSRequests() int64 { return i.jwksRequests.Load() }

// DiscoveryRequests counts requests for the discovery document.
func (i *Issuer) DiscoveryRequests() int64 { return i.discoveryRequests.Load() }

// SetJWKSFailure makes the JWKS endpoint answer 503 while on is true; the
// discovery document keeps working.
func (i *Issuer) SetJWKSFailure(on bool) { i.jwksFailing.Store(on) }

// Start serves again after Stop, on the same address. It is a no-op when the
// issuer is running.
func (i *Issuer) Start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.srv != nil {
		return nil
	}
	addr := i.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("oidcissuer: listen %s: %w", addr, err)
	}
	i.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           i.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         i.ca.ServerTLSConfig(),
		// Handshake failures from clients that do not trust the test CA
		// are expected in tests; keep them off stderr.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	i.srv = srv
	go serve(srv, tls.NewListener(ln, srv.TLSConfig))
	return nil
}

// serve runs one HTTP server until Stop closes it. Serve only returns
// http.ErrServerClosed or a listener failure; either way the next request
// fails to connect, which is what a test observes.
func serve(srv *http.Server, ln net.Listener) {
	_ = srv.Serve(ln)
}

// Stop closes the listener and every open connection, simulating an outage.
// The address is kept for Start.
func (i *Issuer) Stop() {
	i.mu.Lock()
	srv := i.srv
	i.srv = nil
	i.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Close stops the issuer for good.
func (i *Issuer) Close() { i.Stop() }

// Rotate creates a new key for alg and makes it the one Issue signs alg
// tokens with. With keepOld the previous key for alg stays published (the
// usual overlap during rotation); without it, it is withdrawn from the JWKS.
// It returns the new key's kid.
func (i *Issuer) Rotate(alg string, keepOld bool) (string, error) {
	i.mu.Lock()
	i.nextKID++
	kid := fmt.Sprintf("%s-%d", strings.ToLower(alg), i.nextKID)
	i.mu.Unlock()

	k, err := generateKey(jose.SignatureAlgorithm(alg), kid)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if old := i.active[k.alg]; old != nil && !keepOld {
		i.keys = slices.DeleteFunc(i.keys, func(x *signingKey) bool { return x == old })
	}
	i.keys = append(i.keys, k)
	i.active[k.alg] = k
	return kid, nil
}

// RemoveKey withdraws a key from the JWKS. Tokens it signed stop verifying
// once a validator refreshes its key set.
func (i *Issuer) RemoveKey(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = slices.DeleteFunc(i.keys, func(k *signingKey) bool { return k.kid == kid })
	for alg, k := range i.active {
		if k.kid == kid {
			delete(i.active, alg)
		}
	}
}

// KeyIDs lists the kids currently published, in publication order.
func (i *Issuer) KeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	ids := make([]string, len(i.keys))
	for n, k := range i.keys {
		ids[n] = k.kid
	}
	return ids
}

// ActiveKeyID returns the kid Issue uses for alg, or "".
func (i *Issuer) ActiveKeyID(alg string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if k := i.active[jose.SignatureAlgorithm(alg)]; k != nil {
		return k.kid
	}
	return ""
}

// handler routes the discovery document and the JWKS.
func (i *Issuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+i.path+"/.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET "+i.path+"/protocol/openid-connect/certs", i.serveJWKS)
	return mux
}

// serveDiscovery answers the OpenID Provider metadata.
func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	i.discoveryRequests.Add(1)
	base := i.URL()
	issuer := base
	if i.doc != "" {
		issuer = i.doc
	}
	writeJSON(w, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                base + "/protocol/openid-connect/auth",
		"token_endpoint":                        base + "/protocol/openid-connect/token",
		"userinfo_endpoint":                     base + "/protocol/openid-connect/userinfo",
		"jwks_uri":                              i.JWKSURL(),
		"response_types_supported":              []string{"code", "id_token", "token id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": i.algs,
		"grant_types_supported":                 []string{"authorization_code", "client_credentials", "password"},
	})
}

// serveJWKS answers the public keys.
func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.jwksRequests.Add(1)
	if i.jwksFailing.Load() {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	i.mu.Lock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(i.keys))}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, k.public())
	}
	i.mu.Unlock()
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, set)
}

// writeJSON writes v as an application/json answer.
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
