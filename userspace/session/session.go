// Package session runs one client connection through its phases: startup
// (TLS negotiation), admission, backend connect, authentication relay, and the
// message relay loop. Policy (who may connect, what a statement may do) is
// injected; the session knows the protocol, not the rules.
package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Config holds the per-session settings shared by all sessions.
type Config struct {
	// ClientTLS is offered to clients; nil when TLS is disabled.
	ClientTLS *tls.Config
	// RequireTLS refuses plaintext clients with SQLSTATE 28000.
	RequireTLS bool
	// AllowMD5 relays MD5 password challenges; otherwise they are refused.
	AllowMD5 bool
	// StartupTimeout bounds everything before the first ReadyForQuery.
	StartupTimeout time.Duration
	// MaxMessageSize is the largest message body a client may send.
	MaxMessageSize int
	// DefaultDatabase is used when the client names none.
	DefaultDatabase string
	// Settings, when set, are settings statements must run under (data
	// masking needs them): a client may not choose them at startup, and a
	// session whose server reports another value ends.
	Settings *SettingsGuard
}

// Dialer opens the backend connection of a session and reports whether it is
// encrypted.
type Dialer func(ctx context.Context) (conn net.Conn, encrypted bool, err error)

// Deps are the collaborators a session uses.
type Deps struct {
	Config *Config
	Dial   Dialer
	// BackendAddr is the address Dial connects to (for statement policies).
	BackendAddr string
	Cancels     *CancelRegistry
	Metrics     *telemetry.Metrics
	Log         *slog.Logger
	// Authenticator, when set, authenticates clients itself (JWT as
	// password); the backend login then goes through LoginDial.
	Authenticator Authenticator
	LoginDial     LoginDialer
	// ShuntDial, when set, opens the session's connection to the shunt node
	// (the first time a policy routes a statement there).
	ShuntDial LoginDialer
	// Policies decide about every statement (simple Query, Parse, Bind), in
	// order, in passthrough and token sessions alike. Empty: statements are
	// relayed without being decoded.
	Policies stmt.Chain
	// Parser parses statement text for the policies and the tracker (shared
	// by all sessions, cached by text). Needed with Policies or Records.
	Parser *sqlparse.Parser
	// Records, when set, receives the record of every finished statement. It
	// runs on the session's goroutine and must not block.
	Records func(*stmt.Record)
	// QueryComment puts the audited application_name of a token session as
	// a comment before every statement it sends (AUDIT_QUERY_COMMENT).
	QueryComment bool
}

// Session is one client connection.
type Session struct {
	Deps
	ID     uint64
	client net.Conn
	// raw is the accepted connection (client may become a TLS wrapper of it).
	raw net.Conn
	// startupDeadline is the client's deadline until the session is ready.
	startupDeadline time.Time
	// reject, when set, is sent to the client after startup instead of serving it.
	reject *wire.Error

	clientTLS  bool
	backend    net.Conn
	backendTLS bool
	startup    *wire.Startup

	cr *wire.Reader  // client reader
	cw *bufio.Writer // client writer
	br *wire.Reader  // backend reader
	bw *bufio.Writer // backend writer

	key   cancelKey
	ops   opQueue
	login *Login
	ctx   context.Context

	// Statement seam (sessions with policies or records).
	tr        *tracker
	published atomic.Pointer[tracker] // tr, for State from other goroutines
	facts     stmt.Facts
	st        stmt.Statement
	// comment is the audit comment put before every statement (token
	// sessions with QueryComment), or "".
	comment string
	// lastParsed is the client goroutine's last parse: one text is asked
	// about several times on its way (readable, policies, tracker).
	lastParsed *sqlparse.Parsed
	// skipToSync discards client messages until Sync after a refused
	// extended-protocol message, as the server does after an error.
	skipToSync bool
	// scratch is the client pump's encode buffer.
	scratch []byte
	// arrival is when the client pump's last read from the client returned
	// (arrivalBytes the reader's count then): every message of one read
	// arrived at that time, and the clock is read once per read, not per
	// message.
	arrival      time.Time
	arrivalBytes uint64
	// shapes are the policies' last decisions about the shapes of simple
	// Queries, for reuse (decideQuery; client pump only).
	shapes map[*sqlparse.Parsed]*stmt.Memo
	// localShapes index the templates of those shapes by shape key, so
	// that a Query of a shape whose decision is reused is parsed without
	// the shared caches (sqlparse.Parser.ParseLocal).
	localShapes map[string]*sqlparse.Parsed
	// shapeKey is ParseLocal's scratch space for a shape key.
	shapeKey []byte
	// queryParse is where parseQuery answers a text whose shape's
	// decision is reused, so a Query of a known shape allocates no parse.
	// It is valid during one clientQuery only: the op takes a copy of its
	// statement, and the decision's slow path (or anything that keeps the
	// parse) an owned Parsed (sqlparse.Parsed.Own).
	queryParse sqlparse.Parsed
	// names interns statement and portal names (intern).
	names map[string]string
	// candidates is clientBind's buffer for the statements a Bind may bind.
	candidates [2]*prepared

	// Legs: the fast node (backend, br, bw above) and, once a statement is
	// routed there, the shunt node. Their pumps share the client writer and
	// the op queue under pumpMu; pumpCond wakes a pump waiting for its turn.
	fast     *leg
	shunt    atomic.Pointer[leg]
	pumpMu   sync.Mutex
	pumpCond *sync.Cond
	in       *wire.Reader // the reader of the leg whose message is handled
	inLeg    *leg
	nullw    *bufio.Writer // where answers the client must not see go
	// Client pump routing state (route.go).
	openLeg    *leg            // leg of the extended messages since the last Sync
	portalLeg  map[string]*leg // leg each portal was bound on
	shuntRetry time.Time       // no new shunt connection before then

	// Backend pump state (under pumpMu).
	cur     *op // the op being answered (head of ops)
	row     pgproto3.DataRow
	rowBuf  []byte
	desync  bool   // an answer did not match the op queue (logged once)
	lastErr string // SQLSTATE of the last ErrorResponse
	// lastDesc and lastFields are the last RowDescription decoded and its
	// fields: a statement described again (a Bind, Describe, Execute
	// cycle) reuses them when the bytes are the same. Fields are never
	// changed once decoded, so they can be shared.
	lastDesc   []byte
	lastFields []pgproto3.FieldDescription
	// encoding is the session's client_encoding as the server reported it.
	encoding atomic.Pointer[string]
	// otherEncoding is the first client_encoding other than UTF8 and
	// SQL_ASCII the server reported: from then on the session may be back
	// in it (RESET, a rolled-back SET) before the server says so, so
	// non-ASCII text is refused for the rest of the session.
	otherEncoding atomic.Pointer[string]

	// noPlainErrors is set while a TLS handshake is under way.
	noPlainErrors bool
	// lingerOnClose drains unread client input before closing, so a final
	// error is not lost to a TCP reset (the client was mid-message).
	lingerOnClose atomic.Bool

	connMu sync.Mutex // guards backend against Shutdown

	fatal        atomic.Pointer[wire.Error]
	backendFatal bool
	clientEnded  atomic.Bool
	closeOnce    sync.Once
}

// New prepares a session for an accepted client connection.
func New(id uint64, client net.Conn, deps Deps) *Session {
	return &Session{Deps: deps, ID: id, client: client, raw: client}
}

// Reject makes the session refuse the client with e once startup is read, so
// clients see a proper ErrorResponse (for example 53300) instead of a reset.
func (s *Session) Reject(e *wire.Error) { s.reject = e }

func newWriter(conn net.Conn) *bufio.Writer { return bufio.NewWriterSize(conn, bufSize) }

// Run serves the connection until it ends. It never panics the process: a
// failure ends this session only.
func (s *Session) Run(ctx context.Context) {
	defer s.close()
	s.ctx = ctx
	s.startupDeadline = time.Now().Add(s.Config.StartupTimeout)
	s.client.SetDeadline(s.startupDeadline)
	if err := s.runStartup(ctx); err != nil {
		s.endWithError(err)
		return
	}
	if s.startup == nil {
		return // cancel request served
	}
	if e := s.Config.Settings.startup(s.startup.Params); e != nil {
		s.Log.Info("startup parameters refused", "reason", e.Message)
		s.endWithError(e)
		return
	}
	auth := s.runAuth
	if s.Authenticator != nil {
		auth = s.runLogin
	}
	if err := auth(ctx); err != nil {
		s.endWithError(err)
		return
	}
	s.client.SetDeadline(time.Time{})
	s.backend.SetDeadline(time.Time{})
	s.Log.Debug("session ready", "database", s.database())
	s.startSeam()
	s.relay()
}

// Shutdown asks a running session to end: the client receives a 57P01 error at
// the next message boundary and both connections close.
func (s *Session) Shutdown() {
	s.fatal.CompareAndSwap(nil, wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command").
		WithDetail("pgproxy is shutting down"))
	s.connMu.Lock()
	backend := s.backend
	s.connMu.Unlock()
	if backend != nil {
		backend.Close()
	} else {
		s.raw.Close()
	}
}

// setBackend publishes the backend connection to Shutdown.
func (s *Session) setBackend(conn net.Conn, encrypted bool) {
	s.connMu.Lock()
	s.backend, s.backendTLS = conn, encrypted
	s.connMu.Unlock()
}

func (s *Session) user() string {
	if s.startup == nil {
		return ""
	}
	u, _ := s.startup.Get("user")
	return u
}

func (s *Session) database() string {
	if s.startup == nil {
		return ""
	}
	d, _ := s.startup.Get("database")
	return d
}

// endWithError tells the client why its connection ends (through
// clientError), unless it left or was already told, and logs it.
func (s *Session) endWithError(err error) {
	if quietEnd(err) {
		switch {
		case errors.Is(err, errSilentClose):
			s.Log.Info("connection closed", "reason", err.Error())
		case errors.Is(err, errSessionOver):
		default:
			s.Log.Debug("client went away during startup")
		}
		return
	}
	e := clientError(err)
	var (
		we *wire.Error
		ne net.Error
	)
	switch {
	case errors.As(err, &we):
		s.Log.Info("connection refused", "sqlstate", e.Code, "reason", e.Message)
	case errors.As(err, &ne) && ne.Timeout():
		s.Log.Info("startup timed out")
		s.Metrics.Rejected("startup_timeout")
	case errors.Is(err, wire.ErrProtocol) || errors.Is(err, wire.ErrMessageTooLarge):
		s.lingerOnClose.Store(errors.Is(err, wire.ErrMessageTooLarge))
		s.Log.Info("protocol violation", "err", err)
		s.Metrics.Rejected("protocol_violation")
	default:
		s.Log.Info("session ended", "sqlstate", e.Code, "err", err)
	}
	s.sendError(e)
}

// lingerClose half-closes conn and reads what the peer is still sending,
// for at most a second and 16 MiB: closing a socket with unread input sends
// a reset, which can destroy the error the peer has not read yet.
func lingerClose(conn net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := conn.(closeWriter); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, conn, 16<<20)
}

// sendError writes a FATAL error to the client directly (outside the relay).
func (s *Session) sendError(e *wire.Error) {
	if s.noPlainErrors {
		return
	}
	s.Metrics.Error([]byte(e.Code))
	s.client.SetWriteDeadline(time.Now().Add(2 * time.Second))
	s.client.Write(wire.AppendError(nil, e))
}

func (s *Session) close() {
	s.closeOnce.Do(func() {
		if s.lingerOnClose.Load() {
			lingerClose(s.client)
		}
		s.client.Close()
		if s.backend != nil {
			s.backend.Close()
		}
		s.Cancels.Remove(s.key)
		s.ops.close()
	})
}
