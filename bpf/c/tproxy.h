/* tcx ingress: steer TCP segments for target endpoints to the agent's IP_TRANSPARENT listener. */
#pragma once

#include "common.h"

#define TPROXY_LISTENER_V4 0
#define TPROXY_LISTENER_V6 1

/* Parsed view of one TCP segment: lookup tuple and target key. */
struct tcp_seg {
	struct bpf_sock_tuple tuple;
	struct endpoint_key dst;
	__u32 listener;
	int syn_only;
};

static __always_inline int parse_v4(struct __sk_buff *skb, void *l3, void *end, struct tcp_seg *s)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return 0;
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end)
		return 0;
	s->tuple.ipv4.saddr = ip->saddr;
	s->tuple.ipv4.daddr = ip->daddr;
	s->tuple.ipv4.sport = tcp->source;
	s->tuple.ipv4.dport = tcp->dest;
	map_v4(s->dst.addr, ip->daddr);
	s->dst.port = tcp->dest;
	s->listener = TPROXY_LISTENER_V4;
	s->syn_only = tcp->syn && !tcp->ack;
	return 1;
}

static __always_inline int parse_v6(struct __sk_buff *skb, void *l3, void *end, struct tcp_seg *s)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
		return 0;
	struct tcphdr *tcp = (void *)(ip6 + 1);
	if ((void *)(tcp + 1) > end)
		return 0;
	__builtin_memcpy(s->tuple.ipv6.saddr, &ip6->saddr, 16);
	__builtin_memcpy(s->tuple.ipv6.daddr, &ip6->daddr, 16);
	s->tuple.ipv6.sport = tcp->source;
	s->tuple.ipv6.dport = tcp->dest;
	__builtin_memcpy(s->dst.addr, &ip6->daddr, 16);
	s->dst.port = tcp->dest;
	s->listener = TPROXY_LISTENER_V6;
	s->syn_only = tcp->syn && !tcp->ack;
	return 1;
}

/* Assigns an existing connection's socket, or the listener for a new one. */
static __always_inline int assign(struct __sk_buff *skb, struct tcp_seg *s)
{
	struct bpf_sock *sk;
	if (s->listener == TPROXY_LISTENER_V4)
		sk = bpf_skc_lookup_tcp(skb, &s->tuple, sizeof(s->tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_skc_lookup_tcp(skb, &s->tuple, sizeof(s->tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state != BPF_TCP_LISTEN) {
			long r = bpf_sk_assign(skb, sk, 0);
			bpf_sk_release(sk);
			return r;
		}
		bpf_sk_release(sk);
	}
	sk = bpf_map_lookup_elem(&tproxy_lsn, &s->listener);
	if (!sk)
		return -1;
	long r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return r;
}

SEC("tc")
int pgproxy_tproxy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;

	struct tcp_seg s = {};
	int ok = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		ok = parse_v4(skb, eth + 1, end, &s);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		ok = parse_v6(skb, eth + 1, end, &s);
	if (!ok || !is_target(&s.dst))
		return TC_ACT_OK;

	struct config *cfg = get_config();
	if (!cfg)
		return TC_ACT_OK;
	if (assign(skb, &s)) {
		count(CNT_TPROXY_ERROR);
		return TC_ACT_OK;
	}
	skb->mark = cfg->tproxy_mark;
	if (s.syn_only)
		count(CNT_TPROXY_ASSIGN);
	return TC_ACT_OK;
}
