// Package bpftest holds helpers for the kernel tests of packages bpf and
// agent: honest gating (skip with a reason, or fail when PGPROXY_REQUIRE_BPF
// or CI is set), per-test cgroups, and clients and listeners started inside a
// cgroup by re-executing the test binary. It is imported only by tests.
package bpftest
