package session

import (
	"bufio"
	"errors"
	"net"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// leg is one backend connection of a session: the fast node it logged in
// to, and the shunt node statements may be routed to (opened on first use).
// Each leg has a pump goroutine relaying its answers; the op queue says
// which leg answers next, so answers reach the client in the order of the
// client's messages.
type leg struct {
	name string
	conn net.Conn
	br   *wire.Reader
	bw   *bufio.Writer
	// cancel is where a CancelRequest for a statement on this leg goes.
	cancel CancelTarget
	// prepared are the named statements this leg has (the shunt's are
	// prepared on demand).
	prepared map[string]bool
	// done is closed when the leg's pump ended.
	done chan struct{}
}

// legOf returns the leg an op goes to (nil means fast).
func (s *Session) legOf(o *op) *leg {
	if o == nil || o.leg == nil {
		return s.fast
	}
	return o.leg
}

// asyncMessage reports whether a backend message is unsolicited
// (NoticeResponse, NotificationResponse, ParameterStatus): it answers no
// op and may arrive from any leg at any time.
func asyncMessage(typ byte) bool { return typ == 'N' || typ == 'A' || typ == 'S' }

// pumpLeg relays one leg's messages to the client until that connection
// ends. Legs share the client writer and the op queue under pumpMu: a pump
// reads a message header without the lock, then, holding it, waits until
// its leg owns the head of the queue (answers come in the client's order)
// and handles the message. Output is flushed when the pump's input is
// drained, before it waits on its socket.
func (s *Session) pumpLeg(l *leg) error {
	s.pumpMu.Lock()
	defer s.pumpMu.Unlock()
	for {
		if l.br.Buffered() < wire.HeaderLen {
			if err := s.flushClient(); err != nil {
				return err
			}
			s.pumpMu.Unlock()
			err := l.br.Fill(wire.HeaderLen)
			s.pumpMu.Lock()
			if err != nil {
				return err
			}
		}
		typ := l.br.PeekType()
		if l != s.fast && typ == 'E' {
			// A FATAL from the shunt ends that connection only: the
			// session goes on, its statements there get 08006.
			msg, err := l.br.Peek()
			if err != nil {
				return err
			}
			if wire.IsFatal(msg) {
				l.br.Discard()
				return errShuntFatal
			}
		}
		var h *op
		if !asyncMessage(typ) {
			for {
				h = s.head()
				if h == nil || s.legOf(h) == l {
					break
				}
				s.pumpCond.Wait()
			}
		} else if l != s.fast {
			if err := s.shuntAsync(l, typ); err != nil {
				return err
			}
			continue
		}
		s.in, s.inLeg = l.br, l
		var err error
		if h != nil && h.discard {
			// Answers of a message PostgreSQL would have skipped: the
			// bookkeeping runs, the client sees nothing.
			cw := s.cw
			s.cw = s.nullw
			err = s.relayBackendMessage()
			s.cw = cw
			var we *wire.WriteError
			if errors.As(err, &we) {
				err = nil
			}
		} else {
			err = s.relayBackendMessage()
		}
		if err != nil {
			return err
		}
	}
}

// errShuntFatal: the shunt node ended its connection with a FATAL error.
var errShuntFatal = errors.New("the shunt node ended the connection")

// flushClient sends what the pumps buffered for the client.
func (s *Session) flushClient() error {
	if err := s.cw.Flush(); err != nil {
		return &wire.WriteError{Err: err}
	}
	return nil
}

// shuntAsync handles an unsolicited message from the shunt node: notices
// go to the client (they belong to the statement running there); the
// shunt's ParameterStatus and notifications do not concern the client,
// whose session state is the fast node's.
func (s *Session) shuntAsync(l *leg, typ byte) error {
	if typ == 'N' {
		return l.br.Stream(s.cw)
	}
	return l.br.Discard()
}

// shuntWriteFailed notes that writing to the shunt node failed: its pump
// sees the connection end and settles what was routed there.
func (s *Session) shuntWriteFailed(err error) {
	s.Log.Warn("writing to the shunt node failed", "err", err)
	if l := s.shunt.Load(); l != nil {
		l.conn.Close()
	}
}
