//go:build linux

package bpf_test

import (
	"testing"

	"github.com/pgproxy/pgproxy/bpf"
	"github.com/pgproxy/pgproxy/bpf/bpftest"
)

// The sk_msg shortcut must not change a byte: the same exchange with it on
// and off gives identical replies, and with it on the bytes did take it.
func TestAccelerationIdenticalBytes(t *testing.T) {
	const size = 1 << 20
	replies := map[bool]string{}
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[on], func(t *testing.T) { replies[on] = accelRun(t, on, size) })
	}
	if replies[false] != replies[true] {
		t.Fatal("replies differ between acceleration on and off")
	}
}

func accelRun(t *testing.T, on bool, size int) string {
	f := newFixture(t, bpf.Options{Accelerate: on})
	r := bpftest.Dial(t, f.app, f.target.Addr, bpftest.DialOptions{Size: size})
	if want := f.target.Reply(bpftest.Pattern(size)); r.Reply != want {
		t.Fatalf("accelerate=%v: reply of %d bytes differs from the expected %d", on, len(r.Reply), len(want))
	}
	c, err := f.objs.Counters()
	must(t, err)
	t.Logf("accelerate=%v counters: sockhash_adds=%d skmsg_redirects=%d skmsg_misses=%d",
		on, c["sockhash_adds"], c["skmsg_redirects"], c["skmsg_misses"])
	if on && (c["sockhash_adds"] != 2 || c["skmsg_redirects"] == 0) {
		t.Errorf("accelerate=on: shortcut not taken: %v", c)
	}
	if !on && c["sockhash_adds"] != 0 {
		t.Errorf("accelerate=off: sockets added to the SOCKHASH: %v", c)
	}
	return r.Reply
}
