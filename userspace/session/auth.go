package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

const bufSize = 8 << 10

// runAuth opens the backend connection, sends the client's startup
// parameters and relays the authentication exchange, then the backend's
// ParameterStatus and key data up to the first ReadyForQuery.
func (s *Session) runAuth(ctx context.Context) error {
	if err := s.connectBackend(ctx); err != nil {
		return err
	}
	s.cr = wire.NewReader(s.client, bufSize, s.Config.MaxMessageSize)
	s.cw = newWriter(s.client)
	s.br = wire.NewReader(s.backend, bufSize, 1<<30)
	s.bw = newWriter(s.backend)
	if _, err := s.bw.Write(wire.AppendStartupMessage(nil, s.startup.Params)); err != nil {
		return backendLost(err)
	}
	if err := s.bw.Flush(); err != nil {
		return backendLost(err)
	}
	if err := s.relayAuth(); err != nil {
		return err
	}
	return s.relayUntilReady()
}

func (s *Session) connectBackend(ctx context.Context) error {
	start := time.Now()
	conn, encrypted, err := s.Dial(ctx)
	if err != nil {
		s.Log.Warn("backend connect failed", "err", err)
		s.Metrics.Rejected("backend_unavailable")
		return errBackendUnavailable{err}
	}
	s.Metrics.BackendConnect.Observe(time.Since(start).Seconds())
	s.setBackend(conn, encrypted)
	s.backend.SetDeadline(time.Now().Add(s.Config.StartupTimeout))
	return nil
}

func backendLost(err error) error { return errBackendLost{err: err, auth: true} }

// relayAuth relays Authentication requests and the client's answers until
// AuthenticationOk or an error.
func (s *Session) relayAuth() error {
	for {
		typ, msg, err := s.br.Next()
		if err != nil {
			return backendLost(err)
		}
		switch typ {
		case 'E':
			return s.authRefusedByBackend(msg)
		case 'v': // NegotiateProtocolVersion: we only send 3.0 without _pq_ options
			continue
		case 'R':
		default:
			return fmt.Errorf("%w: backend sent %q during authentication", wire.ErrProtocol, typ)
		}
		if len(msg) < wire.HeaderLen+4 {
			return fmt.Errorf("%w: short authentication message", wire.ErrProtocol)
		}
		code := binary.BigEndian.Uint32(msg[wire.HeaderLen:])
		switch code {
		case pgproto3.AuthTypeOk:
			_, err := s.cw.Write(msg)
			return err
		case pgproto3.AuthTypeCleartextPassword:
			if err := s.relayChallenge(msg, nil); err != nil {
				return err
			}
		case pgproto3.AuthTypeMD5Password:
			if !s.Config.AllowMD5 {
				s.Metrics.AuthFailure("md5_refused")
				return wire.Fatal(wire.CodeInvalidAuthorization, "the database server asked for MD5 password authentication, which pgproxy refuses").
					WithHint("store the role's password as SCRAM-SHA-256, or set ALLOW_MD5_AUTH=true on the proxy")
			}
			if err := s.relayChallenge(msg, nil); err != nil {
				return err
			}
		case pgproto3.AuthTypeSASL:
			filtered, err := filterSASL(msg)
			if err != nil {
				return err
			}
			if err := s.relayChallenge(filtered, s.checkSASLInitial); err != nil {
				return err
			}
		case pgproto3.AuthTypeSASLContinue:
			if err := s.relayChallenge(msg, nil); err != nil {
				return err
			}
		case pgproto3.AuthTypeSASLFinal:
			if _, err := s.cw.Write(msg); err != nil {
				return err
			}
		default:
			s.Metrics.AuthFailure("unsupported_method")
			return wire.Fatal(wire.CodeInvalidAuthorization,
				fmt.Sprintf("the database server asked for an authentication method pgproxy does not relay (code %d)", code))
		}
	}
}

// relayChallenge forwards an authentication request, then the client's
// PasswordMessage-family answer (after check, when given).
func (s *Session) relayChallenge(msg []byte, check func([]byte) error) error {
	if _, err := s.cw.Write(msg); err != nil {
		return err
	}
	if err := s.cw.Flush(); err != nil {
		return err
	}
	typ, answer, err := s.cr.Next()
	if err != nil {
		return err
	}
	if typ != 'p' {
		return fmt.Errorf("%w: expected a password message, got %q", wire.ErrProtocol, typ)
	}
	if check != nil {
		if err := check(answer); err != nil {
			return err
		}
	}
	if _, err := s.bw.Write(answer); err != nil {
		return backendLost(err)
	}
	return s.bw.Flush()
}

// filterSASL removes SCRAM-SHA-256-PLUS from the offered mechanisms: the
// client's TLS channel ends at the proxy, so its binding cannot match the
// backend's.
func filterSASL(msg []byte) ([]byte, error) {
	var offer pgproto3.AuthenticationSASL
	if err := wire.Decode(msg, &offer); err != nil {
		return nil, fmt.Errorf("%w: malformed SASL mechanism list", wire.ErrProtocol)
	}
	kept := offer.AuthMechanisms[:0]
	for _, m := range offer.AuthMechanisms {
		if m != "SCRAM-SHA-256-PLUS" {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return nil, wire.Fatal(wire.CodeInvalidAuthorization, "the database server offers only SASL mechanisms pgproxy cannot relay (channel binding)")
	}
	return wire.Append(nil, &pgproto3.AuthenticationSASL{AuthMechanisms: kept}), nil
}

// checkSASLInitial refuses a SCRAM exchange that cannot succeed through the
// proxy: a client that would bind to the proxy's TLS channel, or one that
// says it supports binding ("y") while the backend link is TLS — PostgreSQL
// then reports a downgrade attack.
func (s *Session) checkSASLInitial(msg []byte) error {
	var first pgproto3.SASLInitialResponse
	if err := wire.Decode(msg, &first); err != nil {
		return fmt.Errorf("%w: malformed SASLInitialResponse", wire.ErrProtocol)
	}
	data := first.Data
	if len(data) == 0 {
		return nil
	}
	switch {
	case data[0] == 'p':
		s.Metrics.AuthFailure("channel_binding")
		return wire.Fatal(wire.CodeInvalidAuthorization, "SCRAM channel binding is not possible through pgproxy")
	case data[0] == 'y' && s.backendTLS:
		s.Metrics.AuthFailure("channel_binding")
		return wire.Fatal(wire.CodeInvalidAuthorization, "SCRAM channel binding cannot be relayed: both the client and the database links use TLS").
			WithHint("connect with channel_binding=disable (the client-to-proxy TLS channel still protects the password exchange)")
	}
	return nil
}

// authRefusedByBackend forwards the backend's authentication error.
func (s *Session) authRefusedByBackend(msg []byte) error {
	code := wire.ErrorCode(msg)
	reason := backendRefusalReason(string(code))
	s.Metrics.AuthFailure(reason)
	s.Metrics.Error(code)
	s.Log.Info("backend refused authentication", "sqlstate", string(code), "reason", reason)
	s.cw.Write(msg)
	s.cw.Flush()
	return errSessionOver
}

// backendRefusalReason labels a server's refusal of a login.
func backendRefusalReason(code string) string {
	reason := "backend_error"
	switch code {
	case wire.CodeInvalidPassword:
		reason = "invalid_password"
	case wire.CodeInvalidAuthorization:
		reason = "invalid_authorization"
	case wire.CodeInvalidCatalogName:
		reason = "unknown_database"
	case wire.CodeTooManyConnections:
		reason = "backend_too_many_connections"
	case wire.CodeCannotConnectNow:
		reason = "backend_starting_up"
	}
	return reason
}

// relayUntilReady forwards ParameterStatus and notices, replaces the
// backend's key data with the proxy's own, and stops after ReadyForQuery.
func (s *Session) relayUntilReady() error {
	for {
		typ, msg, err := s.br.Next()
		if err != nil {
			return backendLost(err)
		}
		switch typ {
		case 'K':
			var key pgproto3.BackendKeyData
			if err := wire.Decode(msg, &key); err != nil {
				return fmt.Errorf("%w: malformed BackendKeyData", wire.ErrProtocol)
			}
			s.registerCancel(key.ProcessID, key.SecretKey)
			if _, err := s.cw.Write(s.key.append(nil)); err != nil {
				return err
			}
		case 'E':
			// PostgreSQL checks the database, connection limits and the
			// role's login right after the password exchange.
			return s.authRefusedByBackend(msg)
		case 'Z':
			if _, err := s.cw.Write(msg); err != nil {
				return err
			}
			return s.cw.Flush()
		case 'S':
			var ps pgproto3.ParameterStatus
			if wire.Decode(msg, &ps) == nil {
				if ps.Name == "client_encoding" {
					s.setClientEncoding(ps.Value)
				}
				if e := s.Config.Settings.reported(ps.Name, ps.Value); e != nil {
					return e
				}
			}
			if _, err := s.cw.Write(msg); err != nil {
				return err
			}
		default:
			if _, err := s.cw.Write(msg); err != nil {
				return err
			}
		}
	}
}
