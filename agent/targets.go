package agent

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pgproxy/pgproxy/bpf"
)

// ParseTargets parses INTERCEPT_TARGETS: a comma-separated list of
// address:port and CIDR:port entries, IPv6 in brackets, for example
// "10.0.0.5:5432,10.1.0.0/16:5432,[fd00::1]:5432,[fd00::/64]:5432".
// Errors name the bad entry.
func ParseTargets(s string) ([]bpf.Target, error) {
	var out []bpf.Target
	for i, raw := range strings.Split(s, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		t, err := parseTarget(entry)
		if err != nil {
			return nil, fmt.Errorf("INTERCEPT_TARGETS entry %d %q: %w", i+1, entry, err)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("INTERCEPT_TARGETS: no targets in %q", s)
	}
	return out, nil
}

func parseTarget(entry string) (bpf.Target, error) {
	colon := strings.LastIndexByte(entry, ':')
	if colon < 0 {
		return bpf.Target{}, fmt.Errorf("missing :port")
	}
	host, portStr := entry[:colon], entry[colon+1:]
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return bpf.Target{}, fmt.Errorf("bad port %q (1-65535)", portStr)
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return bpf.Target{}, fmt.Errorf("unclosed [ in %q", host)
		}
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return bpf.Target{}, fmt.Errorf("IPv6 address must be in brackets: [%s]:%s", host, portStr)
	}
	var prefix netip.Prefix
	if strings.Contains(host, "/") {
		prefix, err = netip.ParsePrefix(host)
		if err != nil {
			return bpf.Target{}, fmt.Errorf("bad CIDR %q", host)
		}
		if prefix != prefix.Masked() {
			return bpf.Target{}, fmt.Errorf("CIDR %s has host bits set (did you mean %s?)", prefix, prefix.Masked())
		}
	} else {
		addr, err := netip.ParseAddr(host)
		if err != nil || addr.Zone() != "" {
			return bpf.Target{}, fmt.Errorf("bad address %q", host)
		}
		prefix = netip.PrefixFrom(addr, addr.BitLen())
	}
	if prefix.Addr().Is4In6() {
		return bpf.Target{}, fmt.Errorf("write IPv4-mapped address %s as plain IPv4", prefix.Addr())
	}
	return bpf.Target{Prefix: prefix, Port: uint16(port)}, nil
}
