package bpftest

import (
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Resolver finds the original destination of an accepted connection.
type Resolver func(net.Conn) (netip.AddrPort, error)

// AgentStub stands in for the agent's engine: it accepts from a listener,
// resolves each connection's original destination, dials it (with Mark as
// SO_MARK) and relays bytes with plain reads and writes (no splice).
type AgentStub struct {
	Mark    uint32
	resolve Resolver
	ln      net.Listener

	mu   sync.Mutex
	seen []netip.AddrPort
	errs []error
}

// StartAgentStub serves ln until cleanup.
func StartAgentStub(t testing.TB, ln net.Listener, mark uint32, resolve Resolver) *AgentStub {
	a := &AgentStub{Mark: mark, resolve: resolve, ln: ln}
	go a.acceptLoop()
	t.Cleanup(func() { ln.Close() })
	return a
}

// Seen returns the original destinations resolved so far.
func (a *AgentStub) Seen() []netip.AddrPort {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]netip.AddrPort(nil), a.seen...)
}

// Errors returns resolution and dial errors so far.
func (a *AgentStub) Errors() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}

func (a *AgentStub) acceptLoop() {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		go a.serve(c)
	}
}

func (a *AgentStub) record(dst netip.AddrPort, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, err)
		return
	}
	a.seen = append(a.seen, dst)
}

func (a *AgentStub) serve(c net.Conn) {
	defer c.Close()
	dst, err := a.resolve(c)
	a.record(dst, err)
	if err != nil {
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second, Control: a.markControl}
	b, err := d.Dial("tcp", dst.String())
	if err != nil {
		a.record(dst, err)
		return
	}
	defer b.Close()
	done := make(chan struct{})
	go relayHalf(b, c, done)
	relayHalf(c, b, nil)
	<-done
}

func (a *AgentStub) markControl(_, _ string, rc syscall.RawConn) error {
	if a.Mark == 0 {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(a.Mark))
	}); err != nil {
		return err
	}
	return serr
}

// relayHalf copies src to dst through a buffer (never splice), then shuts
// dst's write side.
func relayHalf(dst, src net.Conn, done chan<- struct{}) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if done != nil {
		close(done)
	}
}
