package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Target is one intercepted destination: every address in Prefix (a single
// address when Prefix is a full-length prefix) at Port.
type Target struct {
	Prefix netip.Prefix
	Port   uint16
}

// String formats the target as address:port or CIDR:port, IPv6 bracketed.
func (t Target) String() string {
	p := t.Prefix
	s := p.String()
	if p.IsSingleIP() {
		s = p.Addr().String()
	}
	if p.Addr().Is6() {
		s = "[" + s + "]"
	}
	return fmt.Sprintf("%s:%d", s, t.Port)
}

// exact reports whether the target is a single address.
func (t Target) exact() bool { return t.Prefix.IsSingleIP() }

func (t Target) exactKey() pgproxyEndpointKey {
	return pgproxyEndpointKey{Addr: t.Prefix.Addr().Unmap().As16(), Port: netPort(t.Port)}
}

func (t Target) cidrKey() pgproxyCidrKey {
	p := t.Prefix.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return pgproxyCidrKey{Prefixlen: uint32(16 + bits), Port: netPort(t.Port), Addr: p.Addr().As16()}
}

// validate rejects targets the tables cannot hold.
func (t Target) validate() error {
	if !t.Prefix.IsValid() || t.Prefix.Addr().Is4In6() || t.Prefix.Addr().Zone() != "" {
		return fmt.Errorf("bpf: target %v: invalid prefix", t.Prefix)
	}
	if t.Port == 0 {
		return fmt.Errorf("bpf: target %s: port 0", t.Prefix)
	}
	return nil
}

// SetTargets replaces the target tables with targets. Connects already
// redirected keep their original destinations.
func (o *Objects) SetTargets(targets []Target) error {
	exact := map[pgproxyEndpointKey]bool{}
	cidr := map[pgproxyCidrKey]bool{}
	for _, t := range targets {
		if err := t.validate(); err != nil {
			return err
		}
		if t.exact() {
			exact[t.exactKey()] = true
		} else {
			cidr[t.cidrKey()] = true
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	if err := syncTable(o.m(mapTargetsExact), exact); err != nil {
		return fmt.Errorf("bpf: %s: %w", mapTargetsExact, err)
	}
	if err := syncTable(o.m(mapTargetsCIDR), cidr); err != nil {
		return fmt.Errorf("bpf: %s: %w", mapTargetsCIDR, err)
	}
	return nil
}

// syncTable makes the keys of m equal to want (values are 1): it adds new
// keys first, then deletes the ones no longer wanted.
func syncTable[K comparable](m *ebpf.Map, want map[K]bool) error {
	for k := range want {
		if err := m.Put(k, uint32(1)); err != nil {
			return err
		}
	}
	var stale []K
	var k K
	var v uint32
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}
