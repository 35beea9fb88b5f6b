// Package fastpath relays a PostgreSQL backend's messages to its client in
// the kernel: the backend socket sits in a SOCKHASH whose sk_skb verdict
// program walks the PostgreSQL messages of every chunk the socket receives
// (keeping the walk's state, and what userspace must know of the stream:
// messages, bytes, ReadyForQuery messages and the last one's transaction
// status, ErrorResponses, in the session's entry) and redirects the chunk
// to the session's client socket. Userspace keeps the client → backend
// direction, or with AddBoth redirects it unread as well.
//
// The proxy does not use it. It is the measurement behind that decision
// (BenchmarkRoundTrip, see the README's Performance section): the kernel
// sends a redirected chunk from the client socket's psock work, a kworker
// woken for it, which adds about 10 µs to a one-row round trip here (more
// than the Go wake-up it saves), and walking the messages costs about
// 80 ns per message, so the relay is slower than userspace's read and
// write at one client and no faster at eight. TestRelaysInTheKernel keeps the relay itself honest
// (byte-identical answers of up to 4 MB, exact counts), so the measurement
// can be repeated on another kernel.
package fastpath

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Path is the loaded programs and maps, with the programs attached.
type Path struct {
	objs fastpathObjects
}

// Load loads the programs and attaches them to the backend SOCKHASH.
func Load() (*Path, error) {
	p := &Path{}
	if err := loadFastpathObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("fastpath: load: %w", err)
	}
	for _, a := range []struct {
		prog *ebpf.Program
		typ  ebpf.AttachType
	}{{p.objs.PgproxyFpVerdict, ebpf.AttachSkSKBVerdict}} {
		if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: p.objs.FpBackends.FD(), Program: a.prog, Attach: a.typ}); err != nil {
			p.objs.Close()
			return nil, fmt.Errorf("fastpath: attach %s: %w", a.prog, err)
		}
	}
	return p, nil
}

// Close detaches the programs and frees the maps (the sockets in them
// leave the fast path).
func (p *Path) Close() error {
	var errs []error
	for _, a := range []struct {
		prog *ebpf.Program
		typ  ebpf.AttachType
	}{{p.objs.PgproxyFpVerdict, ebpf.AttachSkSKBVerdict}} {
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: p.objs.FpBackends.FD(), Program: a.prog, Attach: a.typ}); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.objs.Close())
	return errors.Join(errs...)
}

// Stats is what the kernel saw of one session's backend → client stream.
type Stats struct {
	On                                     bool
	Status                                 byte
	Messages, Bytes, Ready, Errors, Passed uint64
}

// Session is one backend socket on the fast path.
type Session struct {
	p               *Path
	backend, client uint64
	both            bool
}

// Add puts a session's sockets on the fast path: from now on the messages
// the backend sends are redirected to client by the kernel. Whatever
// userspace already read from backend must have been written to client.
func (p *Path) Add(backend, client syscall.Conn) (*Session, error) {
	return p.add(backend, client, false)
}

// AddBoth puts both directions of a session on the fast path: the backend's
// messages as Add does, and the client's bytes redirected to the backend
// unread (nothing of that direction is counted but bytes).
func (p *Path) AddBoth(backend, client syscall.Conn) (*Session, error) {
	return p.add(backend, client, true)
}

func (p *Path) add(backend, client syscall.Conn, both bool) (*Session, error) {
	bfd, bcookie, err := cookie(backend)
	if err != nil {
		return nil, err
	}
	cfd, ccookie, err := cookie(client)
	if err != nil {
		return nil, err
	}
	s := &Session{p: p, backend: bcookie, client: ccookie}
	if err := p.redirect(bcookie, bfd, ccookie, cfd, false); err != nil {
		return nil, err
	}
	if both {
		s.both = true
		if err := p.redirect(ccookie, cfd, bcookie, bfd, true); err != nil {
			s.Remove()
			return nil, err
		}
	}
	return s, nil
}

// redirect makes the kernel send what socket from (cookie, descriptor)
// receives to socket to: from's session entry, to as a redirect target,
// from in the SOCKHASH the verdict program runs on. raw skips the message
// walk. On failure nothing of it is left.
func (p *Path) redirect(from uint64, fromFD int, to uint64, toFD int, raw bool) error {
	entry := fastpathFpSession{Client: to, On: 1}
	if raw {
		entry.Raw = 1
	}
	if err := p.objs.FpSessions.Update(from, entry, ebpf.UpdateNoExist); err != nil {
		return fmt.Errorf("fastpath: session entry: %w", err)
	}
	if err := p.objs.FpClients.Update(to, uint64(toFD), ebpf.UpdateNoExist); err != nil {
		p.objs.FpSessions.Delete(from)
		return fmt.Errorf("fastpath: redirect target: %w", err)
	}
	if err := p.objs.FpBackends.Update(from, uint64(fromFD), ebpf.UpdateNoExist); err != nil {
		p.objs.FpClients.Delete(to)
		p.objs.FpSessions.Delete(from)
		return fmt.Errorf("fastpath: socket: %w", err)
	}
	return nil
}

// Stats reads the session's entry.
func (s *Session) Stats() (Stats, error) {
	var v fastpathFpSession
	if err := s.p.objs.FpSessions.Lookup(s.backend, &v); err != nil {
		return Stats{}, err
	}
	return Stats{On: v.On != 0, Status: byte(v.Status), Messages: v.Messages, Bytes: v.Bytes, Ready: v.Ready, Errors: v.Errors, Passed: v.Passed}, nil
}

// Remove takes the session's sockets off the fast path.
func (s *Session) Remove() error {
	err := errors.Join(s.p.objs.FpBackends.Delete(s.backend), s.p.objs.FpClients.Delete(s.client), s.p.objs.FpSessions.Delete(s.backend))
	if s.both {
		s.p.objs.FpBackends.Delete(s.client)
		s.p.objs.FpClients.Delete(s.backend)
		s.p.objs.FpSessions.Delete(s.client)
	}
	return err
}

// cookie returns a socket's descriptor and cookie.
func cookie(c syscall.Conn) (int, uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var (
		fd   int
		ck   uint64
		err2 error
	)
	if err := rc.Control(func(f uintptr) {
		fd = int(f)
		ck, err2 = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		return 0, 0, err
	}
	if err2 != nil {
		return 0, 0, fmt.Errorf("fastpath: SO_COOKIE: %w", err2)
	}
	return fd, ck, nil
}
