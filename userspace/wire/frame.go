package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the size of a typed message header: type byte and length.
const HeaderLen = 5

// ErrMessageTooLarge is returned when a peer announces a message above the
// reader's limit.
var ErrMessageTooLarge = errors.New("message too large")

// Reader reads typed protocol messages from a connection into one reusable
// buffer. Whole messages are handed out as slices valid until the next call;
// messages that need no inspection can be streamed to a writer without being
// held whole. Before a call would block on the connection, the BeforeBlock
// hook runs, so writers can flush exactly when no more input is waiting.
type Reader struct {
	rd          io.Reader
	buf         []byte
	r, w        int
	max         int
	minBuf      int
	maxBuf      int
	BeforeBlock func() error
	// Partial is set when Stream failed after writing part of a message.
	Partial bool
	// Bytes counts everything read from the connection.
	Bytes uint64
}

// NewReader returns a Reader with an initial buffer of size bytes that grows
// (up to 128 KiB for streaming, up to maxMsg for whole messages) as traffic needs.
func NewReader(rd io.Reader, size, maxMsg int) *Reader {
	return &Reader{rd: rd, buf: make([]byte, size), max: maxMsg, minBuf: size, maxBuf: 128 << 10}
}

// SetMax changes the largest message body accepted.
func (r *Reader) SetMax(n int) { r.max = n }

// Buffered returns the number of unread bytes held.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads more bytes until at least need bytes are buffered.
func (r *Reader) fill(need int) error {
	if r.w-r.r >= need {
		return nil
	}
	if need > len(r.buf) {
		nb := make([]byte, max(need, 2*len(r.buf)))
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r = 0
		r.buf = nb
	} else if r.r > 0 && len(r.buf)-r.r < need {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for r.w-r.r < need {
		if r.BeforeBlock != nil {
			if err := r.BeforeBlock(); err != nil {
				return err
			}
		}
		if r.r == r.w {
			r.r, r.w = 0, 0
		}
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		r.Bytes += uint64(n)
		if n > 0 && r.w == len(r.buf) && len(r.buf) < r.maxBuf && r.r == 0 {
			// The read filled the buffer: traffic is bulk, read bigger.
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:r.w])
			r.buf = nb
		}
		if err != nil {
			if r.w-r.r >= need {
				return nil
			}
			if errors.Is(err, io.EOF) && r.w > r.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Fill reads until at least n bytes are buffered (it may block, after
// BeforeBlock). A pump uses it to wait for the next message without holding
// locks.
func (r *Reader) Fill(n int) error { return r.fill(n) }

// Peek returns the next whole message (header included) without consuming
// it; the slice is valid until the next call on the Reader.
func (r *Reader) Peek() ([]byte, error) {
	_, n, err := r.Header()
	if err != nil {
		return nil, err
	}
	if err := r.fill(HeaderLen + n); err != nil {
		return nil, err
	}
	return r.buf[r.r : r.r+HeaderLen+n], nil
}

// PeekType returns the type byte of the next message; call after Fill.
func (r *Reader) PeekType() byte {
	if r.w-r.r < 1 {
		return 0
	}
	return r.buf[r.r]
}

// Header returns the next message's type and body length without consuming it.
func (r *Reader) Header() (typ byte, bodyLen int, err error) {
	r.shrink() // a buffer grown for one large whole message (Next) is not kept
	if err := r.fill(HeaderLen); err != nil {
		return 0, 0, err
	}
	typ = r.buf[r.r]
	n := int(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	if n < 4 {
		return 0, 0, fmt.Errorf("%w: message %q has length %d", ErrProtocol, typ, n)
	}
	if n-4 > r.max {
		return typ, n - 4, fmt.Errorf("%w: %q message of %d bytes exceeds the %d byte limit", ErrMessageTooLarge, typ, n-4, r.max)
	}
	return typ, n - 4, nil
}

// Next returns the next whole message (header included) and consumes it. The
// slice is valid until the next call on the Reader.
func (r *Reader) Next() (typ byte, msg []byte, err error) {
	typ, n, err := r.Header()
	if err != nil {
		return typ, nil, err
	}
	if err := r.fill(HeaderLen + n); err != nil {
		return typ, nil, err
	}
	msg = r.buf[r.r : r.r+HeaderLen+n]
	r.r += HeaderLen + n
	return typ, msg, nil
}

// WriteError wraps a failure to write to the destination of Stream, so a
// relay can tell a departed reader from a departed writer.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Stream copies the next message (header included) to w, holding at most one
// buffer of it at a time, and consumes it. After an error, Partial tells
// whether part of the message had already been written to w.
func (r *Reader) Stream(w io.Writer) error {
	r.Partial = false
	_, n, err := r.Header()
	if err != nil {
		return err
	}
	left := HeaderLen + n
	for left > 0 {
		if r.r == r.w {
			if err := r.fill(1); err != nil {
				return err
			}
		}
		chunk := min(left, r.w-r.r)
		if _, err := w.Write(r.buf[r.r : r.r+chunk]); err != nil {
			return &WriteError{err}
		}
		r.Partial = true
		r.r += chunk
		left -= chunk
	}
	r.Partial = false
	r.shrink()
	return nil
}

// shrink drops a buffer grown for one large message once it is empty again.
func (r *Reader) shrink() {
	if r.r == r.w && len(r.buf) > r.maxBuf {
		r.buf = make([]byte, r.maxBuf)
		r.r, r.w = 0, 0
	}
}

// Discard skips the next message without returning it.
func (r *Reader) Discard() error {
	return r.Stream(io.Discard)
}
