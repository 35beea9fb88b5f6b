package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen opens a plain TCP listener for redirected clients. MPTCP is off:
// an MPTCP socket cannot join the SOCKHASH of the local-hop shortcut.
func Listen(ctx context.Context, addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen %s: %w", addr, err)
	}
	return ln.(*net.TCPListener), nil
}

// ListenTransparent opens an IP_TRANSPARENT TCP listener (IPV6_TRANSPARENT
// too for IPv6) for the TPROXY path: it accepts connections addressed to
// any address, and an accepted connection's LocalAddr is the destination the
// client dialled. MPTCP is off (a SOCKMAP cannot hold MPTCP sockets). Needs
// CAP_NET_ADMIN.
func ListenTransparent(ctx context.Context, addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: transparentControl}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: transparent listen %s: %w", addr, err)
	}
	return ln.(*net.TCPListener), nil
}

func transparentControl(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
		if serr == nil && network != "tcp4" {
			if dom, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); dom == unix.AF_INET6 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
			}
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("set IP_TRANSPARENT: %w", err)
	}
	return nil
}

// acceptor wraps the agent's listener so accepted connections cannot be
// spliced when the sk_msg shortcut is on.
type acceptor struct {
	*net.TCPListener
	noSplice bool
}

// Accept returns the next connection, a *net.TCPConn, or, with acceleration,
// a wrapper around one that never splices (Unwrap() gives the *net.TCPConn).
func (a acceptor) Accept() (net.Conn, error) {
	c, err := a.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if a.noSplice {
		return noSpliceConn{c}, nil
	}
	return c, nil
}
