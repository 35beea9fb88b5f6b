// Package transparent holds the end-to-end tests of `pgproxy agent` (transparent mode): real
// clients (psql, pgx, pgbench) started inside a child cgroup v2 or a network namespace of their
// own reach a real PostgreSQL through the agent's eBPF redirect, while the same clients outside
// connect directly. The scenarios are in features/*.feature; TestTransparentFeatures runs them.
//
// The tests need root (cgroup-BPF, network namespaces, bpffs). Without it they skip with the
// reason printed; with the CI environment variable set they fail instead. Every scenario makes
// its own child cgroup, namespaces and pins (named pgpt-<test pid>-...) and removes them; what
// a crashed run left behind is removed by the next run.
package transparent
