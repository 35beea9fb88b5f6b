/* Shared definitions of the pgproxy eBPF programs: constants, keys, maps and helpers. */
#pragma once

#include "../../vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOL_IP 0
#define SOL_IPV6 41
#define SO_ORIGINAL_DST 80
#define TC_ACT_OK 0
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* Flags in struct config.flags. */
#define CFG_HAVE_REDIRECT4 (1u << 0)
#define CFG_HAVE_REDIRECT6 (1u << 1)
#define CFG_ACCELERATE (1u << 2)

/* Counter slots; the Go side names them in counters.go (keep in sync). */
enum counter {
	CNT_CONNECT4_REDIRECT = 0,
	CNT_CONNECT6_REDIRECT,
	CNT_CONNECT_SKIP_AGENT,
	CNT_CONNECT_NO_REDIRECT,
	CNT_CONNECT_ERROR,
	CNT_SOCKOPS_ESTABLISHED,
	CNT_SOCKOPS_ERROR,
	CNT_GETSOCKOPT_ANSWERED,
	CNT_GETSOCKOPT_MISS,
	CNT_GETPEERNAME_ANSWERED,
	CNT_SOCKHASH_ADD,
	CNT_SOCKHASH_ERROR,
	CNT_SKMSG_REDIRECT,
	CNT_SKMSG_MISS,
	CNT_TPROXY_ASSIGN,
	CNT_TPROXY_ERROR,
	CNT__MAX,
};

/* An address (IPv4 as v4-mapped IPv6) and a port in network byte order. */
struct endpoint_key {
	__u8 addr[16];
	__be16 port;
	__u16 pad;
};

/* The destination a client dialled before it was redirected. */
struct orig_dst {
	__u8 addr[16];
	__be16 port;
	__u16 family;
};

/* LPM key: the port first, then the address, so prefixlen = 16 + address bits. */
struct cidr_key {
	__u32 prefixlen;
	__be16 port;
	__u8 addr[16];
};

/* Runtime configuration, written by the Go loader (slot 0 of settings). */
struct config {
	__u32 flags;
	__be32 redirect4;
	__u8 redirect6[16];
	__be16 port4;
	__be16 port6;
	__u32 agent_mark;
	__u64 agent_cgroup_id;
	__u32 tproxy_mark;
	__u32 pad;
};

/* Key of a local TCP socket in the SOCKHASH used by the local-hop shortcut. */
struct sock_key {
	__u8 local[16];
	__u8 remote[16];
	__be16 lport;
	__be16 rport;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct endpoint_key);
	__type(value, __u32);
} targets_exact SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cidr_key);
	__type(value, __u32);
} targets_cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct orig_dst);
} orig_by_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct endpoint_key);
	__type(value, struct orig_dst);
} orig_by_client SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_key);
	__type(value, __u64);
} local_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tproxy_lsn SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += 1;
}

static __always_inline struct config *get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

/* Writes the IPv4 address ip4 (network order) as ::ffff:a.b.c.d into dst. */
static __always_inline void map_v4(__u8 dst[16], __u32 ip4)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(&dst[12], &ip4, 4);
}

/* Copies four network-order words (ctx->*_ip6) into dst. */
static __always_inline void copy_v6(__u8 dst[16], __u32 w0, __u32 w1, __u32 w2, __u32 w3)
{
	__builtin_memcpy(&dst[0], &w0, 4);
	__builtin_memcpy(&dst[4], &w1, 4);
	__builtin_memcpy(&dst[8], &w2, 4);
	__builtin_memcpy(&dst[12], &w3, 4);
}

static __always_inline int is_v4_mapped(const __u8 a[16])
{
	__u64 lo;
	__builtin_memcpy(&lo, a, 8);
	return lo == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff;
}

/* Reports whether dst (address and port) is in the exact or the CIDR target table. */
static __always_inline int is_target(const struct endpoint_key *dst)
{
	if (bpf_map_lookup_elem(&targets_exact, dst))
		return 1;
	struct cidr_key k = {};
	k.prefixlen = 16 + 128;
	k.port = dst->port;
	__builtin_memcpy(k.addr, dst->addr, 16);
	return bpf_map_lookup_elem(&targets_cidr, &k) != NULL;
}
