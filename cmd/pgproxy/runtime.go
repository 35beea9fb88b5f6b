package main

import (
	"os"
	"strings"
	"syscall"

	"github.com/pgproxy/pgproxy/userspace/config"
)

// sysmonSetting keeps the Go runtime's sysmon thread from parking while the
// proxy is idle between messages. When sysmon parks, every syscall entry
// wakes it with a futex call; on a proxy that does a read and a write per
// message that wake was ~40% of the CPU per pgbench transaction (measured with
// pgbench -S at 1 and 8 clients, see README "Performance"). schedtrace makes
// sysmon poll instead of parking; at this period it prints a scheduler line
// at most once every 24.8 days.
const sysmonSetting = "schedtrace=2147483647"

// tuneRuntime re-executes the binary once with sysmonSetting added to GODEBUG,
// unless LOW_LATENCY_RUNTIME (process environment only, parsed by package
// config) is false or GODEBUG already sets schedtrace. An invalid value does
// not re-execute: config.Load reports it and start-up stops.
func tuneRuntime() {
	if on, err := config.LowLatencyRuntime(os.Getenv); err != nil || !on {
		return
	}
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, "schedtrace=") {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "GODEBUG="+godebug+sysmonSetting)
	// On success Exec does not return; on failure the proxy runs untuned.
	syscall.Exec(exe, os.Args, env)
}
