package bpftest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// ListenIn returns a TCP listener on addr whose socket was created inside cg,
// so cgroup hooks of cg apply to it and to the connections it accepts (the
// way the agent's own sockets live in the agent's cgroup). A helper process
// in cg creates it and passes the descriptor back. MPTCP is off.
func ListenIn(t testing.TB, cg *Cgroup, addr string) *net.TCPListener {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "helper-parent")
	theirs := os.NewFile(uintptr(fds[1]), "helper-child")
	defer ours.Close()
	cmd := helperCmd(t, cg, "listen", map[string]string{"ADDR": addr})
	cmd.ExtraFiles = []*os.File{theirs}
	out, err := cmd.CombinedOutput()
	theirs.Close()
	if err != nil {
		t.Fatalf("listener helper: %v: %s", err, out)
	}
	fd, err := recvFD(fds[0])
	if err != nil {
		t.Fatalf("receive listener: %v", err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatalf("listener from fd: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// helperListen is the "listen" helper: create the listener and send it on fd 3.
func helperListen() error {
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", helperArg("ADDR"))
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	return unix.Sendmsg(3, []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
}

func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, 0)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no descriptor received: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, errors.Join(errors.New("bad descriptor message"), err)
	}
	return fds[0], nil
}
