/* cgroup/getpeername4 and getpeername6: a redirected client sees the address it dialled. */
#pragma once

#include "common.h"

static __always_inline struct orig_dst *orig_of(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	return bpf_map_lookup_elem(&orig_by_cookie, &cookie);
}

SEC("cgroup/getpeername4")
int pgproxy_getpeername4(struct bpf_sock_addr *ctx)
{
	struct orig_dst *o = orig_of(ctx);
	if (!o || o->family != AF_INET)
		return 1;
	__u32 ip4;
	__builtin_memcpy(&ip4, &o->addr[12], 4);
	ctx->user_ip4 = ip4;
	ctx->user_port = o->port;
	count(CNT_GETPEERNAME_ANSWERED);
	return 1;
}

SEC("cgroup/getpeername6")
int pgproxy_getpeername6(struct bpf_sock_addr *ctx)
{
	struct orig_dst *o = orig_of(ctx);
	if (!o)
		return 1;
	__u32 w[4];
	__builtin_memcpy(w, o->addr, 16);
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = o->port;
	count(CNT_GETPEERNAME_ANSWERED);
	return 1;
}
