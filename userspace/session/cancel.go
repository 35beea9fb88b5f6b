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

// cancelKey is the key data the proxy gave a client.
type cancelKey struct{ pid, secret uint32 }

// append encodes the key as the BackendKeyData a client receives.
func (k cancelKey) append(dst []byte) []byte {
	return wire.Append(dst, &pgproto3.BackendKeyData{ProcessID: k.pid, SecretKey: binary.BigEndian.AppendUint32(nil, k.secret)})
}

type cancelTarget struct {
	addr   string
	pid    uint32
	secret []byte
}

// CancelRegistry maps the keys the proxy hands to clients onto the backend
// keys they stand for. Clients never see a backend's own key.
type CancelRegistry struct {
	mu   sync.Mutex
	keys map[uint32]cancelEntry
	// Send delivers a CancelRequest to a backend.
	Send func(ctx context.Context, addr string, pid uint32, secret []byte) error
}

type cancelEntry struct {
	secret uint32
	target cancelTarget
}

// NewCancelRegistry returns an empty registry that cancels through send.
func NewCancelRegistry(send func(ctx context.Context, addr string, pid uint32, secret []byte) error) *CancelRegistry {
	return &CancelRegistry{keys: map[uint32]cancelEntry{}, Send: send}
}

// Add issues a fresh proxy key for a backend key.
func (r *CancelRegistry) Add(addr string, pid uint32, secret []byte) cancelKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		k := cancelKey{pid: binary.BigEndian.Uint32(b[:4]) & 0x7fffffff, secret: binary.BigEndian.Uint32(b[4:])}
		if _, taken := r.keys[k.pid]; taken || k.pid == 0 {
			continue
		}
		r.keys[k.pid] = cancelEntry{secret: k.secret, target: cancelTarget{addr, pid, secret}}
		return k
	}
}

// Remove forgets a key when its session ends.
func (r *CancelRegistry) Remove(k cancelKey) {
	if k.pid == 0 {
		return
	}
	r.mu.Lock()
	delete(r.keys, k.pid)
	r.mu.Unlock()
}

func (r *CancelRegistry) lookup(pid uint32, secret []byte) (cancelTarget, bool) {
	if len(secret) != 4 {
		return cancelTarget{}, false
	}
	r.mu.Lock()
	e, ok := r.keys[pid]
	r.mu.Unlock()
	var want [4]byte
	binary.BigEndian.PutUint32(want[:], e.secret)
	if !ok || subtle.ConstantTimeCompare(want[:], secret) != 1 {
		return cancelTarget{}, false
	}
	return e.target, true
}

// serveCancel forwards a CancelRequest whose key the proxy issued. As in
// PostgreSQL, the client gets no answer either way.
func (s *Session) serveCancel(ctx context.Context, pkt *wire.Startup) {
	t, ok := s.Cancels.lookup(pkt.CancelPID, pkt.CancelSecret)
	if !ok {
		s.Metrics.Cancel("unknown_key")
		s.Log.Info("cancel request with an unknown key ignored")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Cancels.Send(ctx, t.addr, t.pid, t.secret); err != nil {
		s.Metrics.Cancel("failed")
		s.Log.Warn("forwarding cancel request failed", "err", err)
		return
	}
	s.Metrics.Cancel("forwarded")
	s.Log.Info("cancel request forwarded")
}
