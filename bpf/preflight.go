package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// ErrPermission is wrapped by Load errors caused by missing privileges.
var ErrPermission = errors.New("insufficient privileges for eBPF")

// ErrUnsupported is wrapped by Load errors caused by a kernel that lacks a
// program type or helper.
var ErrUnsupported = errors.New("kernel lacks eBPF support")

// requirement is one kernel feature Load needs, with the reason it is needed.
type requirement struct {
	prog   ebpf.ProgramType
	helper asm.BuiltinFunc // asm.FnUnspec: only the program type
	why    string
}

var accelerationRequirement = requirement{ebpf.SkMsg, asm.FnMsgRedirectHash, "sk_msg local-hop acceleration"}

func requirements(opts Options) []requirement {
	r := []requirement{
		{ebpf.CGroupSockAddr, asm.FnUnspec, "cgroup/connect4|6 and getpeername4|6"},
		{ebpf.CGroupSockAddr, asm.FnGetSocketCookie, "socket cookies in cgroup/connect"},
		{ebpf.SockOps, asm.FnUnspec, "sockops (link original destination to the client address)"},
		{ebpf.CGroupSockopt, asm.FnUnspec, "cgroup/getsockopt (SO_ORIGINAL_DST)"},
	}
	if opts.Accelerate {
		r = append(r, accelerationRequirement)
	}
	if opts.TPROXY {
		r = append(r, requirement{ebpf.SchedCLS, asm.FnSkAssign, "tcx ingress bpf_sk_assign (TPROXY)"})
	}
	return r
}

// AccelerationSupported reports why the kernel cannot run the sk_msg
// local-hop shortcut (Options.Accelerate), or nil when it can.
func AccelerationSupported() error {
	return check(accelerationRequirement)
}

// preflight checks privileges and kernel support before anything is loaded.
func preflight(opts Options) error {
	if err := checkCapabilities(); err != nil {
		return err
	}
	for _, req := range requirements(opts) {
		if err := check(req); err != nil {
			return err
		}
	}
	return nil
}

// check probes one requirement.
func check(req requirement) error {
	var err error
	what := fmt.Sprintf("program type %s", req.prog)
	if req.helper == asm.FnUnspec {
		err = features.HaveProgramType(req.prog)
	} else {
		what = fmt.Sprintf("helper %s in %s programs", req.helper, req.prog)
		err = features.HaveProgramHelper(req.prog, req.helper)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w: %s, needed for %s: %w", ErrUnsupported, what, req.why, err)
	default:
		return fmt.Errorf("bpf: probe %s (needed for %s): %w", what, req.why, err)
	}
}

// Capability numbers from linux/capability.h.
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capBPF      = 39
)

// checkCapabilities requires CAP_NET_ADMIN (cgroup and tcx attach) and
// CAP_BPF or CAP_SYS_ADMIN (load programs and maps) in the effective set.
func checkCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("bpf: read capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF (or CAP_SYS_ADMIN)")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v (run as root or grant them)", ErrPermission, missing)
	}
	return nil
}
