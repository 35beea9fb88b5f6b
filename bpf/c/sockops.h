/* sockops: link the original destination to the client's (address, port) once connected. */
#pragma once

#include "common.h"

/* The remote port of a sock_ops context in network byte order. */
static __always_inline __be16 sockops_remote_port(struct bpf_sock_ops *s)
{
	return bpf_htons((__u16)bpf_ntohl(s->remote_port));
}

static __always_inline void sockops_local(struct bpf_sock_ops *s, __u8 dst[16])
{
	if (s->family == AF_INET)
		map_v4(dst, s->local_ip4);
	else
		copy_v6(dst, s->local_ip6[0], s->local_ip6[1], s->local_ip6[2], s->local_ip6[3]);
}

static __always_inline void sockops_remote(struct bpf_sock_ops *s, __u8 dst[16])
{
	if (s->family == AF_INET)
		map_v4(dst, s->remote_ip4);
	else
		copy_v6(dst, s->remote_ip6[0], s->remote_ip6[1], s->remote_ip6[2], s->remote_ip6[3]);
}

/* Adds an established socket to the SOCKHASH of the local-hop shortcut. */
static __always_inline void sockhash_add(struct bpf_sock_ops *s)
{
	struct sock_key k = {};
	sockops_local(s, k.local);
	sockops_remote(s, k.remote);
	k.lport = bpf_htons((__u16)s->local_port);
	k.rport = sockops_remote_port(s);
	if (bpf_sock_hash_update(s, &local_socks, &k, BPF_ANY))
		count(CNT_SOCKHASH_ERROR);
	else
		count(CNT_SOCKHASH_ADD);
}

/* Client side: a redirected socket is connected; key its original destination by its source. */
static __always_inline void on_active_established(struct bpf_sock_ops *s, struct config *cfg)
{
	__u64 cookie = bpf_get_socket_cookie(s);
	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
	if (!o)
		return;
	struct endpoint_key k = {};
	sockops_local(s, k.addr);
	k.port = bpf_htons((__u16)s->local_port);
	if (bpf_map_update_elem(&orig_by_client, &k, o, BPF_ANY)) {
		count(CNT_SOCKOPS_ERROR);
		return;
	}
	count(CNT_SOCKOPS_ESTABLISHED);
	if (cfg->flags & CFG_ACCELERATE)
		sockhash_add(s);
}

/* Agent side: an accepted socket whose peer was redirected joins the shortcut. */
static __always_inline void on_passive_established(struct bpf_sock_ops *s, struct config *cfg)
{
	if (!(cfg->flags & CFG_ACCELERATE))
		return;
	struct endpoint_key k = {};
	sockops_remote(s, k.addr);
	k.port = sockops_remote_port(s);
	if (!bpf_map_lookup_elem(&orig_by_client, &k))
		return;
	sockhash_add(s);
}

SEC("sockops")
int pgproxy_sockops(struct bpf_sock_ops *s)
{
	if (s->family != AF_INET && s->family != AF_INET6)
		return 1;
	struct config *cfg = get_config();
	if (!cfg)
		return 1;
	switch (s->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_active_established(s, cfg);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_passive_established(s, cfg);
		break;
	}
	return 1;
}
