package agent

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultAgentMark is the SO_MARK the agent puts on its own backend sockets
// when Interceptor.AgentMark is zero. Pick another if it collides with marks
// of the node's CNI or of TPROXYMark.
const DefaultAgentMark = 0x504700

// MarkControl returns a net.Dialer.Control function that sets SO_MARK mark
// on the socket before it connects, so cgroup/connect leaves it alone.
func MarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		})
		return errors.Join(err, serr)
	}
}
