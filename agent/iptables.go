package agent

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/pgproxy/pgproxy/bpf"
)

// iptablesChain is the mangle-table chain holding the agent's TPROXY rules.
const iptablesChain = "PGPROXY_TPROXY"

// iptablesTPROXY is the fallback for kernels without tcx: iptables (and
// ip6tables) TPROXY rules in a chain of the agent's own, jumped to from
// PREROUTING for each intercepted interface. The marked segments reach the
// same IP_TRANSPARENT listener through the same policy route as with tcx.
type iptablesTPROXY struct {
	interfaces []string
	targets    []bpf.Target
	port       uint16
	mark       uint32
	families   []string // binaries in use: iptables, ip6tables
}

// binaries returns the iptables commands the targets need.
func (t *iptablesTPROXY) binaries() []string {
	var v4, v6 bool
	for _, tg := range t.targets {
		if tg.Prefix.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	var out []string
	if v4 {
		out = append(out, "iptables")
	}
	if v6 {
		out = append(out, "ip6tables")
	}
	return out
}

// install creates the chain, its rules and the PREROUTING jumps. A chain
// left by a crashed agent is flushed first.
func (t *iptablesTPROXY) install() error {
	t.remove()
	for _, bin := range t.binaries() {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("agent: TPROXY_METHOD=iptables needs %s: %w", bin, err)
		}
		if err := run(bin, "-t", "mangle", "-N", iptablesChain); err != nil {
			return err
		}
		t.families = append(t.families, bin)
		mark := fmt.Sprintf("0x%x/0x%x", t.mark, t.mark)
		for _, tg := range t.targets {
			if tg.Prefix.Addr().Is4() != (bin == "iptables") {
				continue
			}
			dst := tg.Prefix.Masked().String()
			if err := run(bin, "-t", "mangle", "-A", iptablesChain, "-p", "tcp", "-d", dst,
				"--dport", strconv.Itoa(int(tg.Port)), "-j", "TPROXY", "--on-port", strconv.Itoa(int(t.port)),
				"--tproxy-mark", mark); err != nil {
				return err
			}
		}
		for _, ifc := range t.interfaces {
			if err := run(bin, "-t", "mangle", "-I", "PREROUTING", "-i", ifc, "-p", "tcp", "-j", iptablesChain); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes the jumps and the chain; missing pieces are not errors.
func (t *iptablesTPROXY) remove() {
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		for _, ifc := range t.interfaces {
			for run(bin, "-t", "mangle", "-D", "PREROUTING", "-i", ifc, "-p", "tcp", "-j", iptablesChain) == nil {
			}
		}
		run(bin, "-t", "mangle", "-F", iptablesChain)
		run(bin, "-t", "mangle", "-X", iptablesChain)
	}
	t.families = nil
}

func run(bin string, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("agent: %s %v: %v: %s", bin, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
