package oidcissuer

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pgproxy/pgproxy/tests/testca"
)

// CA is a throw-away certificate authority and the server certificate it
// signed for the loopback addresses. Other local test servers (for example
// the zitadel-based provider) use it too.
type CA struct {
	certPEM []byte
	pool    *x509.CertPool
	server  tls.Certificate
}

// NewCA creates a CA valid for one day and a server certificate for
// 127.0.0.1, ::1 and localhost.
func NewCA() (*CA, error) {
	a, err := testca.New("pgproxy test OIDC CA", 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.CACert)
	return &CA{certPEM: a.CAPEM(), pool: pool, server: a.ServerCertificate()}, nil
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte { return slices.Clone(ca.certPEM) }

// Pool returns a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// ServerTLSConfig is a server configuration presenting the loopback
// certificate.
func (ca *CA) ServerTLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
}

// HTTPClient returns a client that trusts only the CA.
func (ca *CA) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.pool.Clone(), MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
}

// WriteFile writes the CA certificate to dir/oidc-ca.pem and returns the
// path, for OIDC_CERT_PATH.
func (ca *CA) WriteFile(dir string) (string, error) {
	p := filepath.Join(dir, "oidc-ca.pem")
	if err := os.WriteFile(p, ca.certPEM, 0o600); err != nil {
		return "", fmt.Errorf("oidcissuer: write CA: %w", err)
	}
	return p, nil
}
