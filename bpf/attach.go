package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// cgroupPrograms are attached to a cgroup by Attach, in this order.
var cgroupPrograms = []struct {
	prog   string
	attach ebpf.AttachType
}{
	{progSockops, ebpf.AttachCGroupSockOps},
	{progGetsockopt, ebpf.AttachCGroupGetsockopt},
	{progGetpeername4, ebpf.AttachCgroupInet4GetPeername},
	{progGetpeername6, ebpf.AttachCgroupInet6GetPeername},
	{progConnect4, ebpf.AttachCGroupInet4Connect},
	{progConnect6, ebpf.AttachCGroupInet6Connect},
}

// Attach attaches the cgroup programs (connect4/6, sockops, getsockopt,
// getpeername4/6) to the cgroup v2 directory cgroupPath, for every socket
// created in it or in its descendants. Set targets and the redirect address
// first, or nothing is redirected. Attach may be called for several cgroups;
// on error nothing from this call stays attached.
func (o *Objects) Attach(cgroupPath string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	var made []namedLink
	for _, p := range cgroupPrograms {
		l, err := link.AttachCgroup(link.CgroupOptions{
			Path:    cgroupPath,
			Attach:  p.attach,
			Program: o.prog(p.prog),
		})
		if err != nil {
			for _, m := range made {
				m.link.Close()
			}
			return fmt.Errorf("bpf: attach %s to cgroup %s: %w", p.prog, cgroupPath, err)
		}
		made = append(made, namedLink{name: o.linkName(p.prog), link: l})
	}
	o.links = append(o.links, made...)
	return o.pinNewLinksLocked(made)
}

// AttachSockops attaches only the sockops program to cgroupPath. The agent
// uses it for its own cgroup when that lies outside the intercepted one, so
// its accepted sockets join the local-hop shortcut (Options.Accelerate).
func (o *Objects) AttachSockops(cgroupPath string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: ebpf.AttachCGroupSockOps, Program: o.prog(progSockops)})
	if err != nil {
		return fmt.Errorf("bpf: attach %s to cgroup %s: %w", progSockops, cgroupPath, err)
	}
	made := []namedLink{{name: o.linkName(progSockops), link: l}}
	o.links = append(o.links, made...)
	return o.pinNewLinksLocked(made)
}

// AttachTPROXY attaches the tcx ingress program to the interface ifindex of
// the calling thread's network namespace. Segments for targets are assigned
// to the listener set with SetTPROXYListener and marked with the mark set by
// SetTPROXYMark, which a policy route must deliver locally. It needs
// Options.TPROXY.
func (o *Objects) AttachTPROXY(ifindex int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errClosed
	}
	p := o.prog(progTPROXY)
	if p == nil {
		return errors.New("bpf: AttachTPROXY needs Load with Options.TPROXY")
	}
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   p,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err != nil {
		return fmt.Errorf("bpf: attach %s to tcx ingress of ifindex %d: %w", progTPROXY, ifindex, err)
	}
	made := []namedLink{{name: o.linkName(progTPROXY), link: l}}
	o.links = append(o.links, made...)
	return o.pinNewLinksLocked(made)
}

// linkName names the next link of prog uniquely, for pinning.
func (o *Objects) linkName(prog string) string {
	n := 0
	for _, l := range o.links {
		if l.name == prog || len(l.name) > len(prog) && l.name[:len(prog)+1] == prog+"." {
			n++
		}
	}
	if n == 0 {
		return prog
	}
	return fmt.Sprintf("%s.%d", prog, n)
}

// attachSkMsg attaches the sk_msg program to the SOCKHASH.
func (o *Objects) attachSkMsg() error {
	err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  o.m(mapLocalSocks).FD(),
		Program: o.prog(progSkMsg),
		Attach:  ebpf.AttachSkMsgVerdict,
	})
	if err != nil {
		return fmt.Errorf("bpf: attach %s to %s: %w", progSkMsg, mapLocalSocks, err)
	}
	o.skMsgOn = true
	return nil
}

func (o *Objects) detachSkMsgLocked() error {
	if !o.skMsgOn {
		return nil
	}
	o.skMsgOn = false
	err := link.RawDetachProgram(link.RawDetachProgramOptions{
		Target:  o.m(mapLocalSocks).FD(),
		Program: o.prog(progSkMsg),
		Attach:  ebpf.AttachSkMsgVerdict,
	})
	if err != nil {
		return fmt.Errorf("bpf: detach %s: %w", progSkMsg, err)
	}
	return nil
}

var errClosed = errors.New("bpf: objects closed")
