package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5/pgproto3"
)

// registerRawSteps defines the steps of hand-driven wire-protocol clients.
func registerRawSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^a raw client connects and sends nothing$`, func() error {
		return w.dialRaw()
	})
	sc.Step(`^a raw client connects and sends only the first (\d+) bytes of a StartupMessage$`, func(n int) error {
		if err := w.dialRaw(); err != nil {
			return err
		}
		msg, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": "scram_user", "database": "testdb"}}).Encode(nil)
		if err != nil {
			return err
		}
		_, err = w.raw.Write(msg[:n])
		return err
	})
	sc.Step(`^the proxy closes that connection within (\d+) seconds$`, func(secs int) error {
		_, err := w.rawClosedWithin(secs)
		return err
	})
	sc.Step(`^the proxy closes that connection within (\d+) seconds without sending anything$`, func(secs int) error {
		data, err := w.rawClosedWithin(secs)
		if err == nil && len(data) > 0 {
			return fmt.Errorf("the proxy sent %q before closing", data)
		}
		return err
	})
	sc.Step(`^a raw client sends an? (SSLRequest|GSSENCRequest) and gets "(.)"$`, w.rawEncryptionRequest)
	sc.Step(`^a raw client sends "([^"]*)" instead of a StartupMessage$`, func(text string) error {
		if err := w.dialRaw(); err != nil {
			return err
		}
		_, err := w.raw.Write([]byte(strings.ReplaceAll(text, `\r\n`, "\r\n")))
		return err
	})
	sc.Step(`^a raw client starts TLS directly with ALPN "([^"]*)"$`, func(proto string) error {
		return w.rawDirectTLS([]string{proto})
	})
	sc.Step(`^a raw client starting TLS directly without ALPN is turned away$`, func() error {
		if err := w.rawDirectTLS(nil); err != nil {
			w.t.Logf("TLS handshake without ALPN refused: %v", err)
			return nil
		}
		// TLS 1.3 finishes the client's side of the handshake before the server's verdict
		// arrives: the session must not start, and whatever ends it must be valid TLS (an
		// alert) or a plain close, never plaintext bytes inside the TLS stream (BUGS.md #1).
		err := w.rawStartup(0, "trust_user", "application_name", "e2e-no-alpn")
		switch {
		case err == nil:
			return fmt.Errorf("a direct TLS connection without ALPN was served")
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "remote error: tls:"):
			w.t.Logf("direct TLS without ALPN refused: %v", err)
			return nil
		default:
			return fmt.Errorf("direct TLS without ALPN ended with something that is not TLS: %v", err)
		}
	})
	sc.Step(`^a raw client logs in as "([^"]*)"$`, func(user string) error {
		return w.rawStartup(0, user, "application_name", "e2e-raw")
	})
	sc.Step(`^a raw client sends a StartupMessage as "([^"]*)" and never answers the password challenge$`,
		func(user string) error {
			if err := w.dialRaw(); err != nil {
				return err
			}
			fe := pgproto3.NewFrontend(w.raw, w.raw)
			fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters: map[string]string{"user": user, "database": "testdb"}})
			if err := fe.Flush(); err != nil {
				return err
			}
			_ = w.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
			msg, err := fe.Receive()
			if err != nil {
				return err
			}
			if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
				return fmt.Errorf("first answer %T, want a SASL challenge", msg)
			}
			_ = w.raw.SetReadDeadline(time.Time{})
			return nil
		})
	sc.Step(`^a CancelRequest with a random key is sent to the proxy$`, func() error {
		var key [8]byte
		_, _ = rand.Read(key[:])
		return w.sendCancel(binary.BigEndian.Uint32(key[:4]), key[4:])
	})
	sc.Step(`^a CancelRequest with the process id of session "(\w+)" and a wrong secret key is sent to the proxy$`,
		func(name string) error {
			s := w.session(name)
			key := append([]byte(nil), s.conn.PgConn().SecretKey()...)
			for i := range key {
				key[i] ^= 0x5a
			}
			return w.sendCancel(s.conn.PgConn().PID(), key)
		})
	sc.Step(`^the proxy answered nothing and closed that connection$`, func() error {
		got, ok := w.scratch["cancel answer"].(rawAnswer)
		if !ok {
			return fmt.Errorf("no CancelRequest was sent in this scenario")
		}
		if len(got.data) > 0 || got.err != nil {
			return fmt.Errorf("proxy answered a CancelRequest with %q (error %v); want nothing, then EOF", got.data, got.err)
		}
		return nil
	})
	sc.Step(`^a raw client asks for protocol 3\.(\d+) as "([^"]*)" with option "([^"]*)" set to "([^"]*)"$`, w.rawStartup)
	sc.Step(`^the proxy answers NegotiateProtocolVersion with minor version (\d+) and unrecognised option "([^"]*)"$`,
		func(minor int, option string) error {
			npv, ok := w.scratch["negotiate"].(*pgproto3.NegotiateProtocolVersion)
			if !ok {
				return fmt.Errorf("no NegotiateProtocolVersion before AuthenticationOk; got %v", w.scratch["startup answers"])
			}
			if int(npv.NewestMinorProtocol) != minor || !slices.Contains(npv.UnrecognizedOptions, option) {
				return fmt.Errorf("NegotiateProtocolVersion minor %d options %v; want minor %d with %q",
					npv.NewestMinorProtocol, npv.UnrecognizedOptions, minor, option)
			}
			return nil
		})
	sc.Step(`^the raw session runs "([^"]*)" and gets "([^"]*)"$`, w.rawQuery)
	sc.Step(`^a raw client sending the startup parameters "([^"]*)" is refused with SQLSTATE "(\w+)" and a message containing "([^"]*)"$`,
		w.rawParamsRefused)
}

// rawAnswer is what a hand-driven connection received before EOF.
type rawAnswer struct {
	data []byte
	err  error
}

func (w *world) dialRaw() error {
	conn, err := net.DialTimeout("tcp", w.proxy.Addr(), 5*time.Second)
	if err != nil {
		return err
	}
	w.raw = conn
	return nil
}

// rawClosedWithin waits for the proxy to end the raw connection (EOF or reset), accepting an
// ErrorResponse before it.
func (w *world) rawClosedWithin(secs int) ([]byte, error) {
	start := time.Now()
	_ = w.raw.SetReadDeadline(start.Add(time.Duration(secs) * time.Second))
	data, err := io.ReadAll(w.raw)
	elapsed := time.Since(start).Round(10 * time.Millisecond)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return data, fmt.Errorf("connection still open after %d s (received %q)", secs, data)
	}
	w.t.Logf("proxy closed the connection after %s (received %d bytes, %v)", elapsed, len(data), err)
	return data, nil
}

// sendCancel sends a CancelRequest on a new connection and records what came back.
func (w *world) sendCancel(pid uint32, key []byte) error {
	conn, err := net.DialTimeout("tcp", w.proxy.Addr(), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := binary.BigEndian.AppendUint32(nil, uint32(12+len(key)))
	buf = binary.BigEndian.AppendUint32(buf, 80877102)
	buf = binary.BigEndian.AppendUint32(buf, pid)
	buf = append(buf, key...)
	if _, err := conn.Write(buf); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(conn)
	w.scratch["cancel answer"] = rawAnswer{data: data, err: err}
	return nil
}

// rawDirectTLS opens a connection that starts with a TLS ClientHello (no SSLRequest), offering
// the given ALPN protocols and trusting the proxy's test CA.
func (w *world) rawDirectTLS(alpn []string) error {
	if w.clientCerts == nil {
		return fmt.Errorf("the proxy has no TLS certificates in this scenario")
	}
	cfg, err := w.clientCerts.ClientTLSConfig("127.0.0.1")
	if err != nil {
		return err
	}
	cfg.NextProtos = alpn
	conn, err := net.DialTimeout("tcp", w.proxy.Addr(), 5*time.Second)
	if err != nil {
		return err
	}
	tc := tls.Client(conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	w.raw = tc
	if err := tc.Handshake(); err != nil {
		return err
	}
	_ = tc.SetDeadline(time.Time{})
	if got := tc.ConnectionState().NegotiatedProtocol; len(alpn) > 0 && got != alpn[0] {
		return fmt.Errorf("ALPN protocol %q, want %q", got, alpn[0])
	}
	return nil
}

// rawEncryptionRequest sends an SSLRequest or GSSENCRequest on a new raw connection and checks
// the one-byte answer.
func (w *world) rawEncryptionRequest(kind, want string) error {
	if err := w.dialRaw(); err != nil {
		return err
	}
	var msg pgproto3.FrontendMessage = &pgproto3.SSLRequest{}
	if kind == "GSSENCRequest" {
		msg = &pgproto3.GSSEncRequest{}
	}
	buf, err := msg.Encode(nil)
	if err != nil {
		return err
	}
	if _, err := w.raw.Write(buf); err != nil {
		return err
	}
	_ = w.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer := make([]byte, 1)
	if _, err := io.ReadFull(w.raw, answer); err != nil {
		return fmt.Errorf("answer to %s: %w", kind, err)
	}
	if string(answer) != want {
		return fmt.Errorf("%s answered %q, want %q", kind, answer, want)
	}
	return nil
}

// rawStartup sends a StartupMessage for protocol 3.minor with one extra option and reads the
// answers up to ReadyForQuery (trust authentication only), on the raw connection already open
// or on a new one.
func (w *world) rawStartup(minor int, user, option, value string) error {
	if w.raw == nil {
		if err := w.dialRaw(); err != nil {
			return err
		}
	}
	_ = w.raw.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(w.raw, w.raw)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: 3<<16 | uint32(minor),
		Parameters:      map[string]string{"user": user, "database": "testdb", option: value},
	})
	if err := fe.Flush(); err != nil {
		return err
	}
	var seen []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			return fmt.Errorf("after %v: %w", seen, err)
		}
		seen = append(seen, fmt.Sprintf("%T", msg))
		w.scratch["startup answers"] = seen
		switch m := msg.(type) {
		case *pgproto3.NegotiateProtocolVersion:
			cp := *m
			cp.UnrecognizedOptions = slices.Clone(m.UnrecognizedOptions)
			w.scratch["negotiate"] = &cp
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("startup refused: %s (SQLSTATE %s)", m.Message, m.Code)
		case *pgproto3.ReadyForQuery:
			w.scratch["frontend"] = fe
			return nil
		}
	}
}

// rawQuery runs sql with a simple Query on the raw session and checks the first value.
func (w *world) rawQuery(sql, want string) error {
	fe, ok := w.scratch["frontend"].(*pgproto3.Frontend)
	if !ok {
		return fmt.Errorf("no raw session is logged in")
	}
	_ = w.raw.SetDeadline(time.Now().Add(10 * time.Second))
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		return err
	}
	var got []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			got = append(got, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("%s: %s (SQLSTATE %s)", sql, m.Message, m.Code)
		case *pgproto3.ReadyForQuery:
			if strings.Join(got, ",") != want {
				return fmt.Errorf("%s: got %q, want %q", sql, got, want)
			}
			return nil
		}
	}
}

// rawParamsRefused sends a StartupMessage with the name=value pairs of list, in order and
// repeats included (pgproto3's map cannot repeat a name), and expects a FATAL refusal.
func (w *world) rawParamsRefused(list, code, text string) error {
	if err := w.dialRaw(); err != nil {
		return err
	}
	_ = w.raw.SetDeadline(time.Now().Add(10 * time.Second))
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, pgproto3.ProtocolVersionNumber)
	for _, kv := range strings.Split(list, ",") {
		k, v, _ := strings.Cut(kv, "=")
		b = append(append(append(append(b, k...), 0), v...), 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	if _, err := w.raw.Write(b); err != nil {
		return err
	}
	fe := pgproto3.NewFrontend(w.raw, w.raw)
	msg, err := fe.Receive()
	if err != nil {
		return fmt.Errorf("no answer to the startup: %w", err)
	}
	e, ok := msg.(*pgproto3.ErrorResponse)
	if !ok {
		return fmt.Errorf("the startup was answered with %T, want an ErrorResponse", msg)
	}
	if e.Severity != "FATAL" || e.Code != code || !strings.Contains(e.Message, text) {
		return fmt.Errorf("refused with %s %s %q, want FATAL %s containing %q", e.Severity, e.Code, e.Message, code, text)
	}
	if _, err := w.rawClosedWithin(2); err != nil {
		return err
	}
	return nil
}
