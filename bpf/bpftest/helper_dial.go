package bpftest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// helperDial is the "dial" helper: one TCP round trip, result as JSON.
func helperDial() error {
	mark, err := strconv.ParseUint(helperArg("MARK"), 10, 32)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		if mark == 0 {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", helperArg("ADDR"))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := c.(*net.TCPConn)
	peer, err := getpeername(tc) // before the peer closes
	if err != nil {
		return err
	}
	payload := helperArg("PAYLOAD")
	if n, _ := strconv.Atoi(helperArg("SIZE")); n > 0 {
		payload = Pattern(n)
	}
	if _, err := io.WriteString(tc, payload); err != nil {
		return err
	}
	if err := tc.CloseWrite(); err != nil {
		return err
	}
	reply, err := io.ReadAll(tc)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(DialResult{
		Local: c.LocalAddr().String(),
		Peer:  peer,
		Reply: string(reply),
	})
}

// getpeername asks the kernel (not Go's cached address) for the peer.
func getpeername(c *net.TCPConn) (string, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	var sa unix.Sockaddr
	var gerr error
	if err := rc.Control(func(fd uintptr) { sa, gerr = unix.Getpeername(int(fd)) }); err != nil {
		return "", err
	}
	if gerr != nil {
		return "", gerr
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)).String(), nil
	}
	return "", fmt.Errorf("unexpected peer %T", sa)
}
