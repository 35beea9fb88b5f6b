// Package bpf loads, attaches, configures, pins and reads the eBPF programs of
// pgproxy's transparent mode.
//
// The programs (C sources under c/, compiled by bpf2go into the committed
// pgproxy_bpfel.o; `go generate ./bpf/...` reproduces it) are:
//
//   - cgroup/connect4 and cgroup/connect6 rewrite a TCP connect whose
//     destination is in the target tables (exact address:port, or CIDR:port in
//     an LPM trie) toward the redirect address set with SetRedirect, and record
//     the original destination under the socket cookie;
//   - sockops, on ACTIVE_ESTABLISHED, re-keys that original destination by the
//     client's (source address, source port): the remote address the agent
//     sees on accept, read back with OriginalDest;
//   - cgroup/getsockopt answers SO_ORIGINAL_DST at SOL_IP and SOL_IPV6 on
//     sockets created in an attached cgroup;
//   - cgroup/getpeername4 and getpeername6 show a redirected client the
//     address it dialled;
//   - sk_msg over a SOCKHASH (Options.Accelerate) moves bytes between the
//     client socket and the agent's accepted socket without the TCP stack;
//   - a tcx ingress program (Options.TPROXY) steers segments for targets that
//     arrive from other hosts to an IP_TRANSPARENT listener with bpf_sk_assign
//     and marks them so a policy route delivers them locally.
//
// Loop avoidance uses no PIDs: connects from sockets carrying the agent's
// SO_MARK (SetAgentMark), or made from the agent's cgroup (SetAgentCgroup),
// are never redirected. cgroup hooks follow the cgroup a socket was created
// in, so the agent must be in its final cgroup before it opens sockets.
//
// Failure behaviour: links are not pinned unless Options.PinLinks is set, so
// if the agent dies the kernel detaches every program and applications
// connect directly again (fail-open). With PinLinks the redirect survives the
// agent (fail-closed: connects to targets fail until an agent is back), and
// RemoveStalePins or Close removes it.
package bpf
