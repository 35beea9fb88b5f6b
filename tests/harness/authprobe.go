package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// AuthRequest is the first authentication answer a server gives to a StartupMessage.
type AuthRequest struct {
	// Method is "trust" (AuthenticationOk at once), "scram" (AuthenticationSASL), "md5" or
	// "password" (cleartext).
	Method string
	// Mechanisms lists the SASL mechanisms offered, for Method "scram".
	Mechanisms []string
}

// ProbeAuth opens a connection to addr, sends a StartupMessage for user and db, and reports
// which authentication the server asks for, without answering it. With tlsConfig non-nil it
// first negotiates TLS with an SSLRequest. An ErrorResponse comes back as an error.
func ProbeAuth(ctx context.Context, addr, user, db string, tlsConfig *tls.Config) (AuthRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return AuthRequest{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if tlsConfig != nil {
		if conn, err = startTLS(ctx, conn, tlsConfig); err != nil {
			return AuthRequest{}, err
		}
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": user, "database": db},
	})
	if err := fe.Flush(); err != nil {
		return AuthRequest{}, err
	}
	msg, err := fe.Receive()
	if err != nil {
		return AuthRequest{}, err
	}
	switch m := msg.(type) {
	case *pgproto3.AuthenticationOk:
		return AuthRequest{Method: "trust"}, nil
	case *pgproto3.AuthenticationSASL:
		return AuthRequest{Method: "scram", Mechanisms: append([]string(nil), m.AuthMechanisms...)}, nil
	case *pgproto3.AuthenticationMD5Password:
		return AuthRequest{Method: "md5"}, nil
	case *pgproto3.AuthenticationCleartextPassword:
		return AuthRequest{Method: "password"}, nil
	case *pgproto3.ErrorResponse:
		return AuthRequest{}, fmt.Errorf("server refused: %s (SQLSTATE %s)", m.Message, m.Code)
	default:
		return AuthRequest{}, fmt.Errorf("unexpected message %T", msg)
	}
}

// startTLS sends an SSLRequest and upgrades conn when the server answers 'S'.
func startTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	buf, err := (&pgproto3.SSLRequest{}).Encode(nil)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(buf); err != nil {
		return nil, err
	}
	answer := make([]byte, 1)
	if _, err := io.ReadFull(conn, answer); err != nil {
		return nil, err
	}
	if answer[0] != 'S' {
		return nil, errors.New("server refused TLS")
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}
