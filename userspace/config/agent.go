package config

import (
	"net/netip"
	"strings"
)

// Agent is transparent mode's configuration. INTERCEPT_TARGETS stays text
// here: the agent package parses it into eBPF targets.
type Agent struct {
	Mode          string // connect or tproxy
	Targets       string
	Cgroup        string
	ListenAddr    string
	RedirectAddrs []netip.AddrPort
	// Accelerate is ACCELERATE_LOCAL true, or auto (AccelerateAuto: on
	// where the kernel has sk_msg redirects, else off with a log line).
	Accelerate       bool
	AccelerateAuto   bool
	PinPath          string
	FailClosed       bool
	TPROXYInterfaces []string
	TPROXYMethod     string // auto, tcx or iptables
}

// loadAgent parses the transparent-mode section.
func loadAgent(p *parser) Agent {
	a := Agent{
		Mode:             p.oneOf("INTERCEPT_MODE", "connect", "tproxy"),
		Targets:          p.str("INTERCEPT_TARGETS"),
		Cgroup:           p.str("INTERCEPT_CGROUP"),
		ListenAddr:       p.addr("AGENT_LISTEN_ADDR"),
		RedirectAddrs:    p.addrPorts("AGENT_REDIRECT_ADDRS"),
		PinPath:          p.str("BPF_PIN_PATH"),
		FailClosed:       p.bool("BPF_FAIL_CLOSED"),
		TPROXYInterfaces: SplitList(p.str("TPROXY_INTERFACES")),
		TPROXYMethod:     p.oneOf("TPROXY_METHOD", "auto", "tcx", "iptables"),
	}
	if strings.EqualFold(strings.TrimSpace(p.str("ACCELERATE_LOCAL")), "auto") {
		a.Accelerate, a.AccelerateAuto = true, true
	} else {
		a.Accelerate = p.bool("ACCELERATE_LOCAL")
	}
	if a.FailClosed && a.PinPath == "" {
		p.fail("BPF_FAIL_CLOSED", "=true needs BPF_PIN_PATH (the pinned links are what outlives the agent)")
	}
	return a
}
