package session

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// cancelKey is the key data the proxy gave a client: the backend's real
// process id, so that pg_backend_pid(), pg_stat_activity and
// pg_terminate_backend agree with what the driver reports, and a secret the
// proxy issued, never the backend's.
type cancelKey struct{ pid, secret uint32 }

// append encodes the key as the BackendKeyData a client receives.
func (k cancelKey) append(dst []byte) []byte {
	return wire.Append(dst, &pgproto3.BackendKeyData{ProcessID: k.pid, SecretKey: binary.BigEndian.AppendUint32(nil, k.secret)})
}

// CancelTarget is a backend a CancelRequest goes to: its address and its own
// key.
type CancelTarget struct {
	Addr   string
	PID    uint32
	Secret []byte
}

// CancelRegistry maps the keys the proxy hands to clients onto the backends
// they stand for. The registry lives in the proxy process, one per server,
// shared by its sessions. Two backends on different servers may have the
// same process id; the proxy's secret tells them apart.
type CancelRegistry struct {
	mu   sync.Mutex
	keys map[uint32][]cancelEntry
	// Send delivers a CancelRequest to a backend.
	Send func(ctx context.Context, addr string, pid uint32, secret []byte) error
}

type cancelEntry struct {
	secret  uint32
	targets func() []CancelTarget
}

// NewCancelRegistry returns an empty registry that cancels through send.
func NewCancelRegistry(send func(ctx context.Context, addr string, pid uint32, secret []byte) error) *CancelRegistry {
	return &CancelRegistry{keys: map[uint32][]cancelEntry{}, Send: send}
}

// Add issues a key for a session whose first backend has process id pid;
// targets returns, when a cancel arrives, the backends the session runs
// statements on.
func (r *CancelRegistry) Add(pid uint32, targets func() []CancelTarget) cancelKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var b [4]byte
		rand.Read(b[:])
		k := cancelKey{pid: pid, secret: binary.BigEndian.Uint32(b[:])}
		taken := false
		for _, e := range r.keys[pid] {
			taken = taken || e.secret == k.secret
		}
		if taken {
			continue
		}
		r.keys[pid] = append(r.keys[pid], cancelEntry{secret: k.secret, targets: targets})
		return k
	}
}

// Remove forgets a key when its session ends.
func (r *CancelRegistry) Remove(k cancelKey) {
	if k.pid == 0 && k.secret == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	entries := r.keys[k.pid]
	for i, e := range entries {
		if e.secret == k.secret {
			entries = append(entries[:i], entries[i+1:]...)
			break
		}
	}
	if len(entries) == 0 {
		delete(r.keys, k.pid)
	} else {
		r.keys[k.pid] = entries
	}
}

// lookup returns the backends of the session a key belongs to. Every secret
// registered for the pid is compared in constant time.
func (r *CancelRegistry) lookup(pid uint32, secret []byte) ([]CancelTarget, bool) {
	if len(secret) != 4 {
		return nil, false
	}
	r.mu.Lock()
	var found func() []CancelTarget
	for _, e := range r.keys[pid] {
		var want [4]byte
		binary.BigEndian.PutUint32(want[:], e.secret)
		if subtle.ConstantTimeCompare(want[:], secret) == 1 {
			found = e.targets
		}
	}
	r.mu.Unlock()
	if found == nil {
		return nil, false
	}
	return found(), true
}

// serveCancel forwards a CancelRequest whose key the proxy issued to the
// backends of that session. As in PostgreSQL, the client gets no answer
// either way.
func (s *Session) serveCancel(ctx context.Context, pkt *wire.Startup) {
	targets, ok := s.Cancels.lookup(pkt.CancelPID, pkt.CancelSecret)
	if !ok {
		s.Metrics.Cancel("unknown_key")
		s.Log.Info("cancel request with an unknown key ignored")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, t := range targets {
		if err := s.Cancels.Send(ctx, t.Addr, t.PID, t.Secret); err != nil {
			s.Metrics.Cancel("failed")
			s.Log.Warn("forwarding cancel request failed", "err", err)
			return
		}
	}
	s.Metrics.Cancel("forwarded")
	s.Log.Info("cancel request forwarded")
}

// registerCancel issues the client's key for the backend the session logged
// in to.
func (s *Session) registerCancel(pid uint32, secret []byte) {
	target := CancelTarget{Addr: s.backend.RemoteAddr().String(), PID: pid, Secret: append([]byte(nil), secret...)}
	s.key = s.Cancels.Add(pid, func() []CancelTarget {
		// A cancel goes to every leg: the one not running a statement
		// ignores it, as PostgreSQL does.
		if l := s.shunt.Load(); l != nil {
			return []CancelTarget{target, l.cancel}
		}
		return []CancelTarget{target}
	})
}
