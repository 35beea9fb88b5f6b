/* cgroup/connect4 and cgroup/connect6: redirect connects to target endpoints toward the agent. */
#pragma once

#include "common.h"

/* Loop avoidance without PIDs: the agent marks its sockets (SO_MARK) or lives in its own cgroup. */
static __always_inline int is_agent_socket(struct bpf_sock_addr *ctx, const struct config *cfg)
{
	struct bpf_sock *sk = ctx->sk;
	if (cfg->agent_mark && sk && (sk->mark & cfg->agent_mark) == cfg->agent_mark)
		return 1;
	if (cfg->agent_cgroup_id && bpf_get_current_cgroup_id() == cfg->agent_cgroup_id)
		return 1;
	return 0;
}

static __always_inline int is_tcp(struct bpf_sock_addr *ctx)
{
	return ctx->type == SOCK_STREAM &&
	       (ctx->protocol == IPPROTO_TCP || ctx->protocol == 0);
}

/* Records the original destination under the socket cookie. Returns 0 on success. */
static __always_inline int remember(struct bpf_sock_addr *ctx, const struct endpoint_key *dst,
				    __u16 family)
{
	struct orig_dst o = {};
	__builtin_memcpy(o.addr, dst->addr, 16);
	o.port = dst->port;
	o.family = family;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	return bpf_map_update_elem(&orig_by_cookie, &cookie, &o, BPF_ANY);
}

/* Decides whether a connect to dst is redirected; returns the config when it must be. */
static __always_inline struct config *should_redirect(struct bpf_sock_addr *ctx,
						      const struct endpoint_key *dst)
{
	if (!is_tcp(ctx))
		return NULL;
	struct config *cfg = get_config();
	if (!cfg || !is_target(dst))
		return NULL;
	if (is_agent_socket(ctx, cfg)) {
		count(CNT_CONNECT_SKIP_AGENT);
		return NULL;
	}
	return cfg;
}

SEC("cgroup/connect4")
int pgproxy_connect4(struct bpf_sock_addr *ctx)
{
	struct endpoint_key dst = {};
	map_v4(dst.addr, ctx->user_ip4);
	dst.port = (__be16)ctx->user_port;

	struct config *cfg = should_redirect(ctx, &dst);
	if (!cfg)
		return 1;
	if (!(cfg->flags & CFG_HAVE_REDIRECT4)) {
		count(CNT_CONNECT_NO_REDIRECT);
		return 1;
	}
	if (remember(ctx, &dst, AF_INET)) {
		count(CNT_CONNECT_ERROR);
		return 1;
	}
	ctx->user_ip4 = cfg->redirect4;
	ctx->user_port = cfg->port4;
	count(CNT_CONNECT4_REDIRECT);
	return 1;
}

SEC("cgroup/connect6")
int pgproxy_connect6(struct bpf_sock_addr *ctx)
{
	struct endpoint_key dst = {};
	copy_v6(dst.addr, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]);
	dst.port = (__be16)ctx->user_port;

	struct config *cfg = should_redirect(ctx, &dst);
	if (!cfg)
		return 1;

	int mapped = is_v4_mapped(dst.addr);
	__u32 need = mapped ? CFG_HAVE_REDIRECT4 : CFG_HAVE_REDIRECT6;
	if (!(cfg->flags & need)) {
		count(CNT_CONNECT_NO_REDIRECT);
		return 1;
	}
	if (remember(ctx, &dst, mapped ? AF_INET : AF_INET6)) {
		count(CNT_CONNECT_ERROR);
		return 1;
	}
	if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = cfg->redirect4;
		ctx->user_port = cfg->port4;
	} else {
		__u32 w[4];
		__builtin_memcpy(w, cfg->redirect6, 16);
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
		ctx->user_port = cfg->port6;
	}
	count(CNT_CONNECT6_REDIRECT);
	return 1;
}
