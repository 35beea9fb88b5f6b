package bpf

import "fmt"

// counterNames names the slots of the counters map, in the order of enum
// counter in c/common.h.
var counterNames = []string{
	"connect4_redirects",
	"connect6_redirects",
	"connect_agent_skips",
	"connect_no_redirect_address",
	"connect_errors",
	"sockops_established",
	"sockops_errors",
	"getsockopt_answered",
	"getsockopt_misses",
	"getpeername_answered",
	"sockhash_adds",
	"sockhash_errors",
	"skmsg_redirects",
	"skmsg_misses",
	"tproxy_assigned",
	"tproxy_errors",
}

// Counters returns every counter summed over CPUs: the kernel programs'
// counters (names above) plus "lookups_answered" and "lookup_misses" counted
// by OriginalDest. Names are stable; metrics can be built from them as
// pgproxy_bpf_<name>.
func (o *Objects) Counters() (map[string]uint64, error) {
	out := make(map[string]uint64, len(counterNames)+2)
	for i, name := range counterNames {
		var perCPU []uint64
		if err := o.m(mapCounters).Lookup(uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("bpf: read counter %s: %w", name, err)
		}
		var sum uint64
		for _, v := range perCPU {
			sum += v
		}
		out[name] = sum
	}
	out["lookups_answered"] = o.lookupsAnswered.Load()
	out["lookup_misses"] = o.lookupMisses.Load()
	return out, nil
}
