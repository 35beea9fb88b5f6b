package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// policyRoute is the routing TPROXY needs in the agent's network namespace:
// packets marked with Mark are looked up in Table, whose only route says
// every address is local (so segments for remote addresses are delivered to
// the transparent listener instead of being forwarded).
//
//	ip rule add fwmark MARK/MARK lookup TABLE
//	ip route add local 0.0.0.0/0 dev lo table TABLE   (and ::/0 for IPv6)
type policyRoute struct {
	Mark  uint32
	Table uint32
	fd    int // NETLINK_ROUTE socket, bound to the namespace add ran in
}

// add installs the rule and route for both families; existing ones are kept.
// It keeps a netlink socket so remove works from any thread's namespace.
func (p *policyRoute) add() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("agent: netlink: %w", err)
	}
	p.fd = fd
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := p.rule(unix.RTM_NEWRULE, fam); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("agent: ip rule fwmark %#x lookup %d: %w", p.Mark, p.Table, err)
		}
		if err := p.route(unix.RTM_NEWROUTE, fam); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("agent: ip route local default dev lo table %d: %w", p.Table, err)
		}
	}
	return nil
}

// remove deletes the rule and route of both families.
func (p *policyRoute) remove() error {
	defer unix.Close(p.fd)
	var errs []error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := p.rule(unix.RTM_DELRULE, fam); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
		if err := p.route(unix.RTM_DELROUTE, fam); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *policyRoute) rule(msgType uint16, family uint8) error {
	// struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
	hdr := []byte{family, 0, 0, 0, unix.RT_TABLE_UNSPEC, 0, 0, unix.FR_ACT_TO_TBL, 0, 0, 0, 0}
	body := append(hdr, nlAttrU32(unix.FRA_FWMARK, p.Mark)...)
	body = append(body, nlAttrU32(unix.FRA_FWMASK, p.Mark)...)
	body = append(body, nlAttrU32(unix.FRA_TABLE, p.Table)...)
	return netlinkDo(p.fd, msgType, body)
}

func (p *policyRoute) route(msgType uint16, family uint8) error {
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
	hdr := []byte{family, 0, 0, 0, unix.RT_TABLE_UNSPEC, unix.RTPROT_STATIC, unix.RT_SCOPE_HOST, unix.RTN_LOCAL, 0, 0, 0, 0}
	body := append(hdr, nlAttrU32(unix.RTA_TABLE, p.Table)...)
	body = append(body, nlAttrU32(unix.RTA_OIF, loopbackIfindex)...)
	return netlinkDo(p.fd, msgType, body)
}

// loopbackIfindex is lo's index in every network namespace.
const loopbackIfindex = 1

func nlAttrU32(typ uint16, v uint32) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b[0:], 8)
	binary.NativeEndian.PutUint16(b[2:], typ)
	binary.NativeEndian.PutUint32(b[4:], v)
	return b
}

// netlinkDo sends one NETLINK_ROUTE request and waits for its ack.
func netlinkDo(fd int, msgType uint16, body []byte) error {
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK)
	if msgType == unix.RTM_NEWRULE || msgType == unix.RTM_NEWROUTE {
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], msgType)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
	return errors.New("no netlink ack")
}
