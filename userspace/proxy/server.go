// Package proxy accepts client connections and runs a session for each:
// admission limits, the cancel-key registry, backend dialing and graceful
// drain on shutdown.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/session"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/telemetry"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Resolver returns the backend address for an accepted connection. Explicit
// mode uses PG_BACKEND_URL; transparent mode returns the original destination.
type Resolver func(conn net.Conn) (string, error)

// Options are the collaborators a server may be given beyond its configuration.
type Options struct {
	// Resolve picks the backend address per connection (transparent mode);
	// nil means PG_BACKEND_URL's host and port.
	Resolve Resolver
	// Authenticator authenticates clients itself (JWT); nil relays the
	// backend's own challenge (passthrough).
	Authenticator session.Authenticator
	// DialControl runs on every backend socket before connect (the agent
	// marks its sockets so they are never intercepted).
	DialControl func(network, address string, c syscall.RawConn) error
	// Policies decide about every statement of every session, in order.
	Policies stmt.Chain
	// Parser parses statements for the policies (shared, cached).
	Parser *sqlparse.Parser
	// Records receives every finished statement's record (must not block).
	Records func(*stmt.Record)
	// QueryComment puts a token session's application_name as a comment
	// before every statement (AUDIT_QUERY_COMMENT).
	QueryComment bool
	// Settings, when set, keeps settings the policies rely on out of the
	// clients' reach (startup packet, role defaults).
	Settings *session.SettingsGuard
	// Shunt, when set, is the slow node statements may be routed to (its
	// URL: host, port, sslmode, and the account the proxy logs in with when
	// the session has no credentials of its own).
	Shunt *config.BackendURL
	// Tokens sign the proxy's own IAM logins (PG_IAM_AUTH): the service
	// account's and the shunt node's, when their URLs are marked IAM.
	Tokens backend.Tokens
}

// Server runs sessions for accepted connections.
type Server struct {
	opts       Options
	auth       session.Authenticator
	login      *backend.Login
	shuntLogin *backend.Login
	shuntAddr  string
	cfg        *config.Config
	sessCfg    *session.Config
	dialer     *backend.Dialer
	metrics    *telemetry.Metrics
	log        *slog.Logger
	cancels    *session.CancelRegistry
	limiter    *ipLimiter
	resolve    Resolver
	nextID     atomic.Uint64
	active     atomic.Int64
	mu         sync.Mutex
	sessions   map[*session.Session]struct{}
	wg         sync.WaitGroup
}

// New builds a server from the configuration.
func New(cfg *config.Config, m *telemetry.Metrics, log *slog.Logger, opts Options) (*Server, error) {
	resolve := opts.Resolve
	d, err := backend.DialerFor(cfg, opts.DialControl)
	if err != nil {
		return nil, err
	}
	sc := &session.Config{
		RequireTLS: cfg.RequireClientTLS, AllowMD5: cfg.AllowMD5Auth, StartupTimeout: cfg.StartupTimeout,
		MaxMessageSize: cfg.MaxMessageSize, DefaultDatabase: cfg.Backend.Database, Settings: opts.Settings,
	}
	if cfg.TLSEnabled {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertPath, cfg.TLSKeyPath)
		if err != nil {
			return nil, fmt.Errorf("TLS_CERT_PATH/TLS_KEY_PATH: %w", err)
		}
		sc.ClientTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}}
	}
	if resolve == nil {
		addr := cfg.Backend.Addr()
		resolve = func(net.Conn) (string, error) { return addr, nil }
	}
	s := &Server{opts: opts, cfg: cfg, sessCfg: sc, dialer: d, metrics: m, log: log, limiter: newIPLimiter(cfg.MaxConnsPerIPPerMin),
		resolve: resolve, sessions: map[*session.Session]struct{}{}}
	s.cancels = session.NewCancelRegistry(d.Cancel)
	if opts.Authenticator != nil {
		if opts.Authenticator.Secret() == "token" && cfg.Backend.User == "" {
			return nil, fmt.Errorf("PG_BACKEND_URL has no user: token authentication logs in as its service account")
		}
		if s.login, err = backend.NewLogin(cfg.Backend, d, opts.Tokens); err != nil {
			return nil, err
		}
		s.auth = opts.Authenticator
	}
	if sh := opts.Shunt; sh != nil {
		sd, err := backend.NewDialer(sh.SSLMode, cfg.BackendCAPath, cfg.BackendConnectTimeout, d.KeepAlive)
		if err != nil {
			return nil, fmt.Errorf("SHUNT_NODE_URL: %w", err)
		}
		sd.Control = opts.DialControl
		if s.shuntLogin, err = backend.NewLogin(*sh, sd, opts.Tokens); err != nil {
			return nil, fmt.Errorf("SHUNT_NODE_URL: %w", err)
		}
		s.shuntAddr = sh.Addr()
	}
	return s, nil
}

// Dialer returns the backend dialer (readiness probes use it).
func (s *Server) Dialer() *backend.Dialer { return s.dialer }

// Listen opens a TCP listener with keepalives and without MPTCP.
func (s *Server) Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: s.cfg.KeepAliveIdle > 0,
		Idle: s.cfg.KeepAliveIdle, Interval: s.cfg.KeepAliveInterval, Count: s.cfg.KeepAliveCount}}
	if s.cfg.KeepAliveIdle <= 0 {
		lc.KeepAlive = -1
	}
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, "tcp", addr)
}

// Serve accepts connections until ln is closed or ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() { <-ctx.Done(); ln.Close() }()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.wg.Add(1)
		go s.serveConn(ctx, conn)
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer s.wg.Done()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	id := s.nextID.Add(1)
	log := s.log.With("conn_id", id, "client", conn.RemoteAddr().String())
	n := s.active.Add(1)
	defer s.active.Add(-1)
	s.metrics.ClientsTotal.Inc()
	s.metrics.ClientsActive.Inc()
	defer s.metrics.ClientsActive.Dec()

	if max := int64(s.cfg.MaxClientConns); max > 0 && n > 2*max {
		// Far over the limit: do not even read the startup packet.
		s.metrics.Rejected("max_connections")
		conn.Close()
		return
	}
	addr, err := s.resolve(conn)
	if err != nil {
		log.Warn("no backend for connection", "err", err)
		s.metrics.Rejected("no_backend")
		conn.Close()
		return
	}
	sess := session.New(id, conn, session.Deps{
		Config: s.sessCfg, Cancels: s.cancels, Metrics: s.metrics, Log: log,
		Policies: s.opts.Policies, Parser: s.opts.Parser, Records: s.opts.Records, QueryComment: s.opts.QueryComment,
		Dial:        func(ctx context.Context) (net.Conn, bool, error) { return s.dialer.Dial(ctx, addr) },
		BackendAddr: addr,
	})
	if s.auth != nil {
		sess.Authenticator = s.auth
		sess.LoginDial = func(ctx context.Context, req session.LoginRequest) (*session.Established, error) {
			return s.login.Dial(ctx, addr, req)
		}
	}
	if s.shuntLogin != nil {
		sess.ShuntDial = func(ctx context.Context, req session.LoginRequest) (*session.Established, error) {
			return s.shuntLogin.Dial(ctx, s.shuntAddr, req)
		}
	}
	if max := int64(s.cfg.MaxClientConns); max > 0 && n > max {
		s.metrics.Rejected("max_connections")
		sess.Reject(wire.Fatal(wire.CodeTooManyConnections, "sorry, too many clients already").
			WithDetail(fmt.Sprintf("pgproxy allows %d client connections (MAX_CLIENT_CONNS)", max)))
	} else if !s.limiter.allow(remoteIP(conn), time.Now()) {
		s.metrics.Rejected("rate_limited")
		sess.Reject(wire.Fatal(wire.CodeTooManyConnections, "too many connections from your address").
			WithDetail(fmt.Sprintf("pgproxy allows %d new connections per address per minute (MAX_CONNS_PER_IP_PER_MIN)", s.cfg.MaxConnsPerIPPerMin)))
	}
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	sess.Run(ctx)
}

func remoteIP(conn net.Conn) netip.Addr {
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Active returns the number of client connections being served.
func (s *Server) Active() int64 { return s.active.Load() }

// Drain waits for sessions to end until ctx is done, then ends the rest with
// 57P01 and waits for them to close.
func (s *Server) Drain(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	left := len(s.sessions)
	for sess := range s.sessions {
		sess.Shutdown()
	}
	s.mu.Unlock()
	s.log.Info("drain timeout reached, closing sessions", "sessions", left)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.log.Warn("sessions still closing after shutdown")
	}
}
