package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// MaxStartupPacket is the largest startup packet accepted, as in PostgreSQL.
const MaxStartupPacket = 10000

// Startup request codes, sent in place of a protocol version.
const (
	codeCancel = 80877102
	codeSSL    = 80877103
	codeGSSEnc = 80877104
	protocolV3 = 3 << 16
	// DirectTLSRecord is the first byte of a TLS handshake record.
	DirectTLSRecord = 0x16
)

// StartupKind tells which packet opened the connection.
type StartupKind int

// The startup packets a client may send.
const (
	KindStartup StartupKind = iota
	KindSSLRequest
	KindGSSEncRequest
	KindCancel
)

// Startup is a decoded startup packet.
type Startup struct {
	Kind StartupKind
	// ProtocolVersion as sent by the client (major<<16 | minor).
	ProtocolVersion uint32
	// Params holds StartupMessage parameters in the order received.
	Params []Param
	// CancelKey is the process id and secret key of a CancelRequest.
	CancelPID    uint32
	CancelSecret []byte
}

// Param is one StartupMessage parameter.
type Param struct{ Name, Value string }

// Get returns the value of a parameter and whether it was present.
func (s *Startup) Get(name string) (string, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Set replaces a parameter's value or appends it.
func (s *Startup) Set(name, value string) {
	for i := range s.Params {
		if s.Params[i].Name == name {
			s.Params[i].Value = value
			return
		}
	}
	s.Params = append(s.Params, Param{name, value})
}

// Delete removes a parameter.
func (s *Startup) Delete(name string) {
	out := s.Params[:0]
	for _, p := range s.Params {
		if p.Name != name {
			out = append(out, p)
		}
	}
	s.Params = out
}

// ErrDirectTLS is returned by ReadStartup when the first byte is a TLS record
// (PostgreSQL 17 sslnegotiation=direct): the caller starts a TLS handshake.
var ErrDirectTLS = errors.New("direct TLS handshake")

// ErrProtocol marks a malformed packet from the peer.
var ErrProtocol = errors.New("protocol violation")

// ReadStartup reads one startup packet. With allowDirectTLS, a first byte that
// opens a TLS record is consumed and ErrDirectTLS returned: the caller replays
// that byte (0x16) into a TLS server handshake.
func ReadStartup(r io.Reader, allowDirectTLS bool) (*Startup, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err
	}
	if hdr[0] == DirectTLSRecord && allowDirectTLS {
		return nil, ErrDirectTLS
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n < 8 || n > MaxStartupPacket {
		return nil, fmt.Errorf("%w: startup packet length %d outside 8..%d", ErrProtocol, n, MaxStartupPacket)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	code := binary.BigEndian.Uint32(body)
	switch code {
	case codeSSL:
		return &Startup{Kind: KindSSLRequest}, nil
	case codeGSSEnc:
		return &Startup{Kind: KindGSSEncRequest}, nil
	case codeCancel:
		if len(body) < 12 || len(body) > 4+4+256 {
			return nil, fmt.Errorf("%w: cancel request of %d bytes", ErrProtocol, len(body))
		}
		return &Startup{Kind: KindCancel, CancelPID: binary.BigEndian.Uint32(body[4:]), CancelSecret: body[8:]}, nil
	}
	if code>>16 != 3 {
		return nil, fmt.Errorf("%w: unsupported frontend protocol %d.%d", ErrProtocol, code>>16, code&0xffff)
	}
	s := &Startup{Kind: KindStartup, ProtocolVersion: code}
	rest := body[4:]
	seen := make(map[string]struct{}, 8)
	for {
		name, tail, ok := cutNul(rest)
		if !ok {
			return nil, fmt.Errorf("%w: startup parameters not terminated", ErrProtocol)
		}
		if name == "" {
			break
		}
		value, tail2, ok := cutNul(tail)
		if !ok {
			return nil, fmt.Errorf("%w: startup parameter %q has no value", ErrProtocol, name)
		}
		// PostgreSQL takes the last of a repeated parameter: a proxy
		// reading the first would judge another user or database than the
		// server logs in. (Names are compared as PostgreSQL compares user,
		// database and options, exactly; settings spelled in other cases
		// are each checked where settings are.)
		if _, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w: startup parameter %q given more than once", ErrProtocol, name)
		}
		seen[name] = struct{}{}
		s.Params = append(s.Params, Param{name, value})
		rest = tail2
	}
	if _, ok := s.Get("user"); !ok {
		return nil, fmt.Errorf("%w: no PostgreSQL user name specified in startup packet", ErrProtocol)
	}
	return s, nil
}

func cutNul(b []byte) (string, []byte, bool) {
	name, rest, ok := cutName(b)
	return string(name), rest, ok
}

// AppendStartupMessage encodes a protocol 3.0 StartupMessage with params in order.
func AppendStartupMessage(dst []byte, params []Param) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, protocolV3)
	for _, p := range params {
		dst = append(dst, p.Name...)
		dst = append(dst, 0)
		dst = append(dst, p.Value...)
		dst = append(dst, 0)
	}
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// AppendSSLRequest encodes an SSLRequest.
func AppendSSLRequest(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 8)
	return binary.BigEndian.AppendUint32(dst, codeSSL)
}

// AppendCancelRequest encodes a CancelRequest for a backend key.
func AppendCancelRequest(dst []byte, pid uint32, secret []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+len(secret)))
	dst = binary.BigEndian.AppendUint32(dst, codeCancel)
	dst = binary.BigEndian.AppendUint32(dst, pid)
	return append(dst, secret...)
}

// AppendNegotiateProtocolVersion tells a client asking for 3.x (x>0) that the
// proxy speaks 3.0, listing the _pq_ options it does not recognise.
func AppendNegotiateProtocolVersion(dst []byte, unrecognized []string) []byte {
	return Append(dst, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unrecognized})
}
