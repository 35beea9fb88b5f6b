package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strconv"
	"testing"
)

type tlsConfigT = tls.Config

func itoa(n int) string { return strconv.Itoa(n) }

func mustClientTLS(t *testing.T, c *Certs, serverName string) *tls.Config {
	t.Helper()
	cfg, err := c.ClientTLSConfig(serverName)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGenerateCerts(t *testing.T) {
	c, err := GenerateCerts(t.TempDir(), "db.example.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(c.CAFile)
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "db.example.test", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example.test"}); err == nil {
		t.Error("certificate valid for a name it was not made for")
	}
	if fi, err := os.Stat(c.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	keyPEM, _ := os.ReadFile(c.CAKeyFile)
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Error("CA key is not a PKCS#8 PEM")
	}
}
