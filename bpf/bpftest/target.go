package bpftest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// Target is a stand-in database: for each connection it reads until EOF and
// answers "<name> got <bytes>", then closes. It records the peers it saw.
type Target struct {
	Addr string
	name string
	ln   net.Listener

	mu    sync.Mutex
	peers []string
}

// NewTarget starts a Target listening on addr (for example 127.0.0.2:0) in
// the test process; it stops at cleanup.
func NewTarget(t testing.TB, addr, name string) *Target {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("target listen %s: %v", addr, err)
	}
	s := &Target{Addr: ln.Addr().String(), name: name, ln: ln}
	go s.acceptLoop()
	t.Cleanup(func() { ln.Close() })
	return s
}

// Peers returns the remote addresses of the connections served so far.
func (s *Target) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// Reply is the answer the target gives to payload.
func (s *Target) Reply(payload string) string { return fmt.Sprintf("%s got %s", s.name, payload) }

func (s *Target) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.peers = append(s.peers, c.RemoteAddr().String())
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Target) serve(c net.Conn) {
	defer c.Close()
	data, err := io.ReadAll(c)
	if err != nil {
		return
	}
	io.WriteString(c, s.Reply(string(data)))
}
