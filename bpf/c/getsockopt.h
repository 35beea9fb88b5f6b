/* cgroup/getsockopt: answer SO_ORIGINAL_DST (SOL_IP and SOL_IPV6) on the agent's accepted sockets. */
#pragma once

#include "common.h"

struct sockaddr_in4_ {
	__u16 family;
	__be16 port;
	__u8 addr[4];
	__u8 zero[8];
};

struct sockaddr_in6_ {
	__u16 family;
	__be16 port;
	__u32 flowinfo;
	__u8 addr[16];
	__u32 scope_id;
};

static __always_inline int answer_v4(struct bpf_sockopt *ctx, const struct orig_dst *o)
{
	struct sockaddr_in4_ *sa = ctx->optval;
	if ((void *)(sa + 1) > ctx->optval_end || o->family != AF_INET)
		return 0;
	sa->family = AF_INET;
	sa->port = o->port;
	__builtin_memcpy(sa->addr, &o->addr[12], 4);
	__builtin_memset(sa->zero, 0, 8);
	ctx->optlen = sizeof(*sa);
	return 1;
}

static __always_inline int answer_v6(struct bpf_sockopt *ctx, const struct orig_dst *o)
{
	struct sockaddr_in6_ *sa = ctx->optval;
	if ((void *)(sa + 1) > ctx->optval_end)
		return 0;
	sa->family = AF_INET6;
	sa->port = o->port;
	sa->flowinfo = 0;
	__builtin_memcpy(sa->addr, o->addr, 16);
	sa->scope_id = 0;
	ctx->optlen = sizeof(*sa);
	return 1;
}

SEC("cgroup/getsockopt")
int pgproxy_getsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->optname != SO_ORIGINAL_DST || (ctx->level != SOL_IP && ctx->level != SOL_IPV6))
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	struct endpoint_key k = {};
	if (sk->family == AF_INET)
		map_v4(k.addr, sk->dst_ip4);
	else
		copy_v6(k.addr, sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2], sk->dst_ip6[3]);
	k.port = sk->dst_port;

	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_client, &k);
	if (!o) {
		count(CNT_GETSOCKOPT_MISS);
		return 1;
	}
	int ok = ctx->level == SOL_IP ? answer_v4(ctx, o) : answer_v6(ctx, o);
	if (!ok) {
		count(CNT_GETSOCKOPT_MISS);
		return 1;
	}
	ctx->retval = 0;
	count(CNT_GETSOCKOPT_ANSWERED);
	return 1;
}
