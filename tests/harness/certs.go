package harness

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pgproxy/pgproxy/tests/testca"
)

// Certs names the PEM files written by GenerateCerts.
type Certs struct {
	// CAFile is the test CA certificate: the file clients trust (sslrootcert,
	// PG_BACKEND_CA_PATH).
	CAFile string
	// CAKeyFile is the CA private key, for tests that sign more certificates.
	CAKeyFile string
	// CertFile is the server certificate, signed by the CA.
	CertFile string
	// KeyFile is the server private key (mode 0600).
	KeyFile string
}

// GenerateCerts writes a fresh test CA and a server certificate signed by it into dir (created
// if needed). Keys are ECDSA P-256. The server certificate is valid for localhost, 127.0.0.1,
// ::1 and each of hosts (IP addresses or DNS names).
func GenerateCerts(dir string, hosts ...string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Certs{
		CAFile:    filepath.Join(dir, "ca.crt"),
		CAKeyFile: filepath.Join(dir, "ca.key"),
		CertFile:  filepath.Join(dir, "server.crt"),
		KeyFile:   filepath.Join(dir, "server.key"),
	}
	ca, err := testca.New("pgproxy test CA", 10*24*time.Hour, hosts...)
	if err != nil {
		return nil, err
	}
	caKey, err := testca.KeyPEM(ca.CAKey)
	if err != nil {
		return nil, err
	}
	key, err := testca.KeyPEM(ca.ServerKey)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{c.CAFile, ca.CAPEM(), 0o644}, {c.CAKeyFile, caKey, 0o600}, {c.CertFile, ca.ServerPEM(), 0o644}, {c.KeyFile, key, 0o600}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ClientTLSConfig returns a client configuration that trusts only the test CA and verifies
// serverName (for example "localhost" or "127.0.0.1").
func (c *Certs) ClientTLSConfig(serverName string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s", c.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}
