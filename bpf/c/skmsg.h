/* sk_msg: local-hop shortcut, bytes sent on one socket go straight to its local peer's ingress. */
#pragma once

#include "common.h"

SEC("sk_msg")
int pgproxy_sk_msg(struct sk_msg_md *msg)
{
	/* The peer's key is ours with local and remote swapped. */
	struct sock_key peer = {};
	if (msg->family == AF_INET) {
		map_v4(peer.local, msg->remote_ip4);
		map_v4(peer.remote, msg->local_ip4);
	} else {
		copy_v6(peer.local, msg->remote_ip6[0], msg->remote_ip6[1], msg->remote_ip6[2],
			msg->remote_ip6[3]);
		copy_v6(peer.remote, msg->local_ip6[0], msg->local_ip6[1], msg->local_ip6[2],
			msg->local_ip6[3]);
	}
	peer.lport = bpf_htons((__u16)bpf_ntohl(msg->remote_port));
	peer.rport = bpf_htons((__u16)msg->local_port);
	if (bpf_msg_redirect_hash(msg, &local_socks, &peer, BPF_F_INGRESS) == SK_PASS)
		count(CNT_SKMSG_REDIRECT);
	else
		count(CNT_SKMSG_MISS);
	return SK_PASS;
}
