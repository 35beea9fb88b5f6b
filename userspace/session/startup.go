package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// runStartup reads startup packets until a StartupMessage (stored in
// s.startup) or a CancelRequest (served; s.startup stays nil).
func (s *Session) runStartup(ctx context.Context) error {
	first := true
	for {
		pkt, err := wire.ReadStartup(s.client, first && s.Config.ClientTLS != nil)
		if errors.Is(err, wire.ErrDirectTLS) {
			if err := s.startTLS(ctx, true); err != nil {
				return err
			}
			first = false
			continue
		}
		if err != nil {
			return err
		}
		first = false
		switch pkt.Kind {
		case wire.KindSSLRequest:
			if s.clientTLS || s.Config.ClientTLS == nil {
				if s.clientTLS {
					return fmt.Errorf("%w: SSLRequest on an encrypted connection", wire.ErrProtocol)
				}
				if _, err := s.client.Write([]byte{'N'}); err != nil {
					return err
				}
				continue
			}
			if _, err := s.client.Write([]byte{'S'}); err != nil {
				return err
			}
			if err := s.startTLS(ctx, false); err != nil {
				return err
			}
		case wire.KindGSSEncRequest:
			if _, err := s.client.Write([]byte{'N'}); err != nil {
				return err
			}
		case wire.KindCancel:
			s.serveCancel(ctx, pkt)
			return nil
		case wire.KindStartup:
			return s.acceptStartup(pkt)
		}
	}
}

// startTLS runs the server side of a TLS handshake on the client connection.
// direct is PostgreSQL 17's sslnegotiation=direct: the first byte (0x16) was
// already consumed and ALPN "postgresql" is mandatory.
func (s *Session) startTLS(ctx context.Context, direct bool) error {
	conn := s.client
	if direct {
		conn = &prefixConn{Conn: conn, prefix: []byte{wire.DirectTLSRecord}}
	}
	tc := tls.Server(conn, s.Config.ClientTLS)
	// From here on a plaintext error would corrupt the client's TLS stream:
	// failures before the handshake completes just close the connection.
	s.noPlainErrors = true
	if err := tc.HandshakeContext(ctx); err != nil {
		s.Metrics.Rejected("tls_handshake")
		return fmt.Errorf("client TLS handshake: %w", err)
	}
	if direct && tc.ConnectionState().NegotiatedProtocol != "postgresql" {
		// As PostgreSQL 17 does: close without a word.
		s.Metrics.Rejected("tls_handshake")
		tc.Close()
		return fmt.Errorf("%w: direct TLS without ALPN \"postgresql\"", errSilentClose)
	}
	s.noPlainErrors = false
	s.client = tc
	s.clientTLS = true
	return nil
}

// acceptStartup checks a StartupMessage: TLS policy, admission, protocol
// version and parameters.
func (s *Session) acceptStartup(pkt *wire.Startup) error {
	s.startup = pkt
	s.Log = s.Log.With("user", s.user())
	if s.reject != nil {
		return s.reject
	}
	if s.Config.RequireTLS && !s.clientTLS {
		s.Metrics.AuthFailure("tls_required")
		return wire.Fatal(wire.CodeInvalidAuthorization, "this proxy accepts only TLS connections").
			WithHint("connect with sslmode=require or stronger")
	}
	if v, ok := pkt.Get("replication"); ok && v != "false" && v != "0" && v != "off" && v != "no" {
		s.Metrics.Rejected("replication")
		return wire.Fatal(wire.CodeFeatureNotSupported, "replication connections are not supported through pgproxy")
	}
	// Protocol 3.x (x>0) and _pq_ extensions: answer for 3.0 and go on.
	var unknown []string
	for _, p := range pkt.Params {
		if strings.HasPrefix(p.Name, "_pq_.") {
			unknown = append(unknown, p.Name)
		}
	}
	for _, name := range unknown {
		pkt.Delete(name)
	}
	if pkt.ProtocolVersion&0xffff != 0 || len(unknown) > 0 {
		if _, err := s.client.Write(wire.AppendNegotiateProtocolVersion(nil, unknown)); err != nil {
			return err
		}
	}
	if _, ok := pkt.Get("database"); !ok && s.Config.DefaultDatabase != "" {
		pkt.Set("database", s.Config.DefaultDatabase)
	}
	return nil
}

// prefixConn replays bytes already read before reading from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
