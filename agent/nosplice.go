package agent

import (
	"io"
	"net"
)

// noSpliceConn is a TCP connection whose bytes may arrive through the sk_msg
// shortcut, onto the socket's ingress queue that splice(2) never reads. It
// hides the ReadFrom/WriteTo methods that make io.Copy splice, so every copy
// goes through Read and Write. Other *net.TCPConn methods stay available.
type noSpliceConn struct {
	*net.TCPConn
}

// ReadFrom copies from r with a buffer instead of splice.
func (c noSpliceConn) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(writerOnly{c.TCPConn}, r, make([]byte, 32*1024))
}

// WriteTo copies to w with a buffer instead of splice.
func (c noSpliceConn) WriteTo(w io.Writer) (int64, error) {
	return io.CopyBuffer(w, readerOnly{c.TCPConn}, make([]byte, 32*1024))
}

// Unwrap returns the underlying connection (for SetKeepAlive and such; do
// not io.Copy it directly when acceleration is on).
func (c noSpliceConn) Unwrap() *net.TCPConn { return c.TCPConn }

type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }
