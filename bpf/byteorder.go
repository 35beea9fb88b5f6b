package bpf

import (
	"encoding/binary"
	"net/netip"
)

// netPort returns port in network byte order as the kernel stores it in a
// __be16 field that Go reads and writes in host order.
func netPort(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

// hostPort is the inverse of netPort.
func hostPort(be uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], be)
	return binary.BigEndian.Uint16(b[:])
}

// netAddr4 returns an IPv4 address as the kernel's __be32 read in host order.
func netAddr4(a netip.Addr) uint32 {
	b := a.Unmap().As4()
	return binary.NativeEndian.Uint32(b[:])
}

// addrFrom16 turns a 16-byte kernel address (IPv4 as v4-mapped) into an
// Addr, unmapping IPv4.
func addrFrom16(b [16]byte) netip.Addr {
	return netip.AddrFrom16(b).Unmap()
}
