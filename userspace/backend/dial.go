// Package backend opens connections to PostgreSQL servers: TCP with
// keepalives, the SSLRequest negotiation and TLS verification that
// PG_BACKEND_URL's sslmode asks for, and out-of-band cancel requests.
package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// ErrTLSRefused is returned when sslmode needs TLS and the server has none.
var ErrTLSRefused = errors.New("backend does not accept TLS but sslmode requires it")

// Dialer opens backend connections.
type Dialer struct {
	// SSLMode is libpq's: disable, allow, prefer, require, verify-ca, verify-full.
	SSLMode string
	// TLS is the client configuration; ServerName is filled per dial.
	TLS *tls.Config
	// Timeout bounds TCP connect and TLS negotiation.
	Timeout time.Duration
	// KeepAlive configures TCP keepalives on backend sockets.
	KeepAlive net.KeepAliveConfig
	// Control, when set, runs on each socket before connect (socket marks).
	Control func(network, address string, c syscall.RawConn) error
}

// DialerFor is the Dialer of PG_BACKEND_URL's server as the configuration
// sets it up (sslmode, PG_BACKEND_CA_PATH, BACKEND_CONNECT_TIMEOUT, the
// keepalives), with control run on each socket (nil for none).
func DialerFor(cfg *config.Config, control func(network, address string, c syscall.RawConn) error) (*Dialer, error) {
	ka := net.KeepAliveConfig{Enable: cfg.KeepAliveIdle > 0, Idle: cfg.KeepAliveIdle, Interval: cfg.KeepAliveInterval, Count: cfg.KeepAliveCount}
	d, err := NewDialer(cfg.Backend.SSLMode, cfg.BackendCAPath, cfg.BackendConnectTimeout, ka)
	if err != nil {
		return nil, err
	}
	d.Control = control
	return d, nil
}

// NewDialer builds a Dialer for sslmode with an optional CA bundle file.
func NewDialer(sslmode, caPath string, timeout time.Duration, ka net.KeepAliveConfig) (*Dialer, error) {
	d := &Dialer{SSLMode: sslmode, Timeout: timeout, KeepAlive: ka}
	if sslmode == "disable" || sslmode == "allow" {
		return d, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPath != "" {
		pem, err := os.ReadFile(caPath)
		if err != nil {
			return nil, fmt.Errorf("PG_BACKEND_CA_PATH: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("PG_BACKEND_CA_PATH: no PEM certificate in %s", caPath)
		}
		cfg.RootCAs = pool
	}
	switch sslmode {
	case "prefer", "require":
		cfg.InsecureSkipVerify = true
	case "verify-ca":
		// Verify the chain but not the host name, as libpq does.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = verifyChainOnly(cfg.RootCAs)
	}
	d.TLS = cfg
	return d, nil
}

func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("backend sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

// Dial connects to addr (host:port) and negotiates TLS as configured. The
// returned bool reports whether the connection is encrypted.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	nd := net.Dialer{KeepAliveConfig: d.KeepAlive, Control: d.Control}
	if !d.KeepAlive.Enable {
		nd.KeepAlive = -1
	}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if d.TLS == nil {
		return conn, false, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConn, encrypted, err := d.negotiate(ctx, conn, addr)
	if err != nil {
		conn.Close()
		return nil, false, err
	}
	tlsConn.SetDeadline(time.Time{})
	return tlsConn, encrypted, nil
}

func (d *Dialer) negotiate(ctx context.Context, conn net.Conn, addr string) (net.Conn, bool, error) {
	if _, err := conn.Write(wire.AppendSSLRequest(nil)); err != nil {
		return nil, false, err
	}
	var answer [1]byte
	if _, err := conn.Read(answer[:]); err != nil {
		return nil, false, fmt.Errorf("reading SSLRequest answer: %w", err)
	}
	switch answer[0] {
	case 'S':
	case 'N':
		if d.SSLMode == "prefer" {
			return conn, false, nil
		}
		return nil, false, ErrTLSRefused
	default:
		return nil, false, fmt.Errorf("backend answered SSLRequest with %q", answer[0])
	}
	cfg := d.TLS.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, false, fmt.Errorf("backend TLS: %w", err)
	}
	return tc, true, nil
}

// Cancel sends a CancelRequest for a backend key to addr.
func (d *Dialer) Cancel(ctx context.Context, addr string, pid uint32, secret []byte) error {
	conn, _, err := d.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(d.Timeout))
	if _, err := conn.Write(wire.AppendCancelRequest(nil, pid, secret)); err != nil {
		return err
	}
	// The server closes the connection once it has read the request.
	var b [1]byte
	conn.Read(b[:])
	return nil
}
