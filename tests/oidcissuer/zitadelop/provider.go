// Package zitadelop runs a real OpenID Provider for tests: the zitadel OIDC
// library's op package, over HTTPS with the oidcissuer test CA, with an
// in-memory storage that supports the client_credentials grant and issues
// JWT access tokens. Unlike oidcissuer, tokens here come out of a real token
// endpoint through a real OAuth 2.0 grant.
package zitadelop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/pgproxy/pgproxy/tests/oidcissuer"
)

// Client is a confidential client allowed the client_credentials grant.
type Client struct {
	ID     string
	Secret string
	// Audience of the access tokens; default the client id.
	Audience []string
	// Claims are added to every access token of this client, e.g. email,
	// preferred_username or realm_access roles.
	Claims map[string]any
}

// Options configures a Provider.
type Options struct {
	Clients []Client
	// TokenLifetime of access tokens; default five minutes.
	TokenLifetime time.Duration
}

// Provider is a running zitadel OpenID Provider.
type Provider struct {
	ca     *oidcissuer.CA
	srv    *http.Server
	issuer string
}

// New starts a provider on a free loopback port.
func New(opts Options) (*Provider, error) {
	ca, err := oidcissuer.NewCA()
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("zitadelop: signing key: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("zitadelop: listen: %w", err)
	}
	issuer := "https://" + ln.Addr().String()

	st := &storage{
		key:      key,
		kid:      "zitadel-rs256-1",
		clients:  map[string]Client{},
		lifetime: opts.TokenLifetime,
	}
	if st.lifetime == 0 {
		st.lifetime = 5 * time.Minute
	}
	for _, c := range opts.Clients {
		st.clients[c.ID] = c
	}
	cfg := &op.Config{SupportedScopes: []string{"openid", "profile", "email"}}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		return nil, err
	}
	provider, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer),
		op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("zitadelop: provider: %w", err)
	}
	srv := &http.Server{
		Handler:           provider,
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         ca.ServerTLSConfig(),
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go serveTLS(srv, ln)
	return &Provider{ca: ca, srv: srv, issuer: issuer}, nil
}

// serveTLS runs the provider's HTTPS server until Close.
func serveTLS(srv *http.Server, ln net.Listener) {
	_ = srv.ServeTLS(ln, "", "")
}

// URL is the issuer identifier.
func (p *Provider) URL() string { return p.issuer }

// DiscoveryURL is the address of the discovery document.
func (p *Provider) DiscoveryURL() string { return p.issuer + "/.well-known/openid-configuration" }

// CA is the test CA the provider's certificate chains to.
func (p *Provider) CA() *oidcissuer.CA { return p.ca }

// Close stops the provider.
func (p *Provider) Close() { _ = p.srv.Close() }

// ClientCredentialsToken runs the client_credentials grant against the token
// endpoint with golang.org/x/oauth2 and returns the access token.
func (p *Provider) ClientCredentialsToken(ctx context.Context, clientID, secret string, scopes ...string) (string, error) {
	cc := clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     p.issuer + "/oauth/token",
		Scopes:       scopes,
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.ca.HTTPClient())
	tok, err := cc.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("zitadelop: client_credentials: %w", err)
	}
	return tok.AccessToken, nil
}

// storage is the in-memory op.Storage. Only what the client_credentials
// grant, discovery and the JWKS need is implemented; the rest answers
// errNotSupported.
type storage struct {
	key      *rsa.PrivateKey
	kid      string
	clients  map[string]Client
	lifetime time.Duration
}

var errNotSupported = errors.New("zitadelop: not supported by the test provider")

// publicKey is the op.Key published in the JWKS.
type publicKey struct{ s *storage }

func (k publicKey) ID() string                         { return k.s.kid }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.s.key.PublicKey }

// signingKey is the op.SigningKey tokens are signed with.
type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.s.key }
func (k signingKey) ID() string                                  { return k.s.kid }

// tokenRequest is the op.TokenRequest of a client_credentials grant.
type tokenRequest struct {
	subject  string
	audience []string
	scopes   []string
}

func (r *tokenRequest) GetSubject() string    { return r.subject }
func (r *tokenRequest) GetAudience() []string { return r.audience }
func (r *tokenRequest) GetScopes() []string   { return r.scopes }

func (s *storage) client(id string) (Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return Client{}, fmt.Errorf("zitadelop: unknown client %q", id)
	}
	return c, nil
}

// ClientCredentials authenticates a client for the client_credentials grant.
func (s *storage) ClientCredentials(_ context.Context, clientID, secret string) (op.Client, error) {
	c, err := s.client(clientID)
	if err != nil {
		return nil, err
	}
	if c.Secret != secret {
		return nil, errors.New("zitadelop: wrong client secret")
	}
	return opClient{c}, nil
}

// ClientCredentialsTokenRequest describes the token to issue.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := s.client(clientID)
	if err != nil {
		return nil, err
	}
	aud := c.Audience
	if len(aud) == 0 {
		aud = []string{c.ID}
	}
	return &tokenRequest{subject: "service-account-" + c.ID, audience: aud, scopes: scopes}, nil
}

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return fmt.Sprintf("%x", id), time.Now().Add(s.lifetime), nil
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, _ string, clientID string, _ []string) (map[string]any, error) {
	c, err := s.client(clientID)
	if err != nil {
		return nil, err
	}
	return maps.Clone(c.Claims), nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, err := s.client(id)
	if err != nil {
		return nil, err
	}
	return opClient{c}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.ClientCredentials(context.Background(), id, secret)
	return err
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s}, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s}}, nil }
func (s *storage) Health(context.Context) error             { return nil }

// The client_credentials grant is only offered when the storage implements
// op.ClientCredentialsStorage.
var (
	_ op.Storage                  = (*storage)(nil)
	_ op.ClientCredentialsStorage = (*storage)(nil)
)
