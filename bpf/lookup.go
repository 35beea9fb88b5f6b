package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// OriginalDest returns the destination a redirected client dialled, given the
// client's address as the agent sees it on accept (the accepted connection's
// remote address). ok is false when the client was not redirected.
func (o *Objects) OriginalDest(remote netip.AddrPort) (dst netip.AddrPort, ok bool, err error) {
	key := pgproxyEndpointKey{Addr: remote.Addr().Unmap().As16(), Port: netPort(remote.Port())}
	var v pgproxyOrigDst
	err = o.m(mapOrigByClient).Lookup(&key, &v)
	switch {
	case errors.Is(err, ebpf.ErrKeyNotExist):
		o.lookupMisses.Add(1)
		return netip.AddrPort{}, false, nil
	case err != nil:
		return netip.AddrPort{}, false, fmt.Errorf("bpf: look up original destination of %s: %w", remote, err)
	}
	o.lookupsAnswered.Add(1)
	return netip.AddrPortFrom(addrFrom16(v.Addr), hostPort(v.Port)), true, nil
}
