package bpftest

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
)

// KilledLoader runs a loader in a child process that loads the programs with
// pinned links, attaches them to cgroupPath, pins in pinDir, and is then
// killed with SIGKILL: what a crashed agent leaves behind.
func KilledLoader(t testing.TB, cgroupPath, pinDir string) {
	t.Helper()
	cmd := helperCmd(t, nil, "loader", map[string]string{"CGROUP": cgroupPath, "PIN": pinDir})
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start loader: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("loader did not get ready: %q %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// helperLoader is the "loader" helper.
func helperLoader() error {
	objs, err := bpf.Load(bpf.Options{PinLinks: true})
	if err != nil {
		return err
	}
	if err := objs.Attach(helperArg("CGROUP")); err != nil {
		return err
	}
	if err := objs.Pin(helperArg("PIN")); err != nil {
		return err
	}
	fmt.Println("ready")
	select {}
}
