package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and
// IP6T_SO_ORIGINAL_DST, answered at SOL_IP / SOL_IPV6.
const soOriginalDst = 80

// SockoptOriginalDst asks the kernel for SO_ORIGINAL_DST of an accepted
// connection: answered by the cgroup/getsockopt program when the socket was
// created in an attached cgroup (or by conntrack after an iptables
// REDIRECT). IPv6 sockets are asked at SOL_IPV6.
func SockoptOriginalDst(c syscall.Conn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var (
		buf  [28]byte // sockaddr_in6, large enough for sockaddr_in
		n    uint32
		gerr error
	)
	err = rc.Control(func(fd uintptr) {
		dom, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			gerr = err
			return
		}
		level := unix.SOL_IP
		if dom == unix.AF_INET6 {
			level = unix.SOL_IPV6
		}
		n = uint32(len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno != 0 {
			gerr = errno
		}
	})
	if err = errors.Join(err, gerr); err != nil {
		return netip.AddrPort{}, fmt.Errorf("agent: getsockopt SO_ORIGINAL_DST: %w", err)
	}
	return parseSockaddr(buf[:n])
}

// parseSockaddr decodes a sockaddr_in or sockaddr_in6 (family in host order,
// port in network order).
func parseSockaddr(b []byte) (netip.AddrPort, error) {
	if len(b) < 8 {
		return netip.AddrPort{}, fmt.Errorf("agent: SO_ORIGINAL_DST: short answer (%d bytes)", len(b))
	}
	family := binary.NativeEndian.Uint16(b[0:2])
	port := binary.BigEndian.Uint16(b[2:4])
	switch {
	case family == unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), nil
	case family == unix.AF_INET6 && len(b) >= 24:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("agent: SO_ORIGINAL_DST: family %d", family)
}
