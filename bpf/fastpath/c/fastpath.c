// SPDX-License-Identifier: GPL-2.0
/*
 * pgproxy fast path: PostgreSQL messages from a backend socket relayed to its client socket in
 * the kernel. The verdict program (sk_skb, attached as BPF_SK_SKB_VERDICT to fp_backends) runs
 * for every chunk of bytes the backend socket receives, walks the PostgreSQL messages in it
 * (their frames may straddle chunks: the walk's state lives in the session's entry), and
 * redirects the chunk to the session's client socket while the session is on the fast path. It
 * keeps what userspace must know of the stream: messages, bytes, ReadyForQuery messages and the
 * last one's transaction status, ErrorResponses.
 *
 * Not a stream parser: the strparser hands a BPF parser its buffer from the start, not from the
 * message it is framing, so a parser cannot find the second message of a segment.
 */
#include "../../../vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* One session: keyed by the backend socket's cookie. */
struct fp_session {
	__u64 client;   /* cookie of the client socket, the key in fp_clients */
	__u32 on;       /* 1: redirect; 0: leave the bytes to userspace */
	__u32 status;   /* transaction status of the last ReadyForQuery ('I', 'T', 'E') */
	__u64 messages; /* messages whose header was redirected */
	__u64 bytes;    /* bytes redirected */
	__u64 ready;    /* ReadyForQuery messages redirected */
	__u64 errors;   /* ErrorResponse messages redirected */
	__u64 passed;   /* chunks left to userspace */
	__u64 broken;   /* 1: a frame was not PostgreSQL's (the walk stopped) */
	/* The walk: bytes of the current message still to come after the header, and the header
	 * bytes of the next message already seen (a header can straddle chunks). */
	__u32 skip;
	__u32 have;
	__u8 hdr[8];
	__u32 raw; /* 1: redirect without walking (the client → backend direction) */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} fp_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} fp_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct fp_session);
} fp_sessions SEC(".maps");

struct walk {
	struct __sk_buff *skb;
	struct fp_session *s;
	__u32 pos, len;
};

/* One step of the walk: skip the rest of a message body, or take one header byte. */
static long walk_step(__u64 i, void *arg)
{
	struct walk *w = arg;
	struct fp_session *s = w->s;
	if (w->pos >= w->len)
		return 1;
	if (s->skip) {
		__u32 left = w->len - w->pos;
		if (s->skip >= left) {
			s->skip -= left;
			w->pos = w->len;
			return 1;
		}
		w->pos += s->skip;
		s->skip = 0;
		return 0;
	}
	__u32 have = s->have;
	__u32 need;
	if (have == 0 && w->len - w->pos >= 6) {
		/* The common case: the whole header in this chunk, read at once. */
		if (bpf_skb_load_bytes(w->skb, w->pos, s->hdr, 6) < 0)
			return 1;
		/* A ReadyForQuery's status byte is read as a sixth header byte. */
		need = s->hdr[0] == 'Z' ? 6 : 5;
		w->pos += need;
	} else {
		/* A header straddling chunks: one byte at a time. */
		if (have >= sizeof(s->hdr))
			return 1;
		__u8 b = 0;
		if (bpf_skb_load_bytes(w->skb, w->pos, &b, 1) < 0)
			return 1;
		s->hdr[have & 7] = b;
		w->pos++;
		have++;
		need = s->hdr[0] == 'Z' ? 6 : 5;
		if (have < need) {
			s->have = have;
			return 0;
		}
	}
	__u32 len = ((__u32)s->hdr[1] << 24) | ((__u32)s->hdr[2] << 16) | ((__u32)s->hdr[3] << 8) | s->hdr[4];
	if (len < 4 || len > (1u << 30)) {
		s->broken = 1;
		s->have = 0;
		return 1;
	}
	s->messages++;
	if (s->hdr[0] == 'Z') {
		s->status = s->hdr[5];
		s->ready++;
	} else if (s->hdr[0] == 'E') {
		s->errors++;
	}
	s->skip = len + 1 - need;
	s->have = 0;
	return 0;
}

/* Chunks of at most 64 KiB arrive; the walk needs at most 6 steps per message plus one per
 * skipped body: bounded by twice the chunk's bytes. */
#define FP_MAX_STEPS (1 << 18)

SEC("sk_skb/verdict")
int pgproxy_fp_verdict(struct __sk_buff *skb)
{
	__u64 me = bpf_get_socket_cookie(skb);
	struct fp_session *s = bpf_map_lookup_elem(&fp_sessions, &me);
	if (!s)
		return SK_PASS;
	if (!s->on || s->broken) {
		s->passed++;
		return SK_PASS;
	}
	if (!s->raw) {
		struct walk w = {.skb = skb, .s = s, .pos = 0, .len = skb->len};
		bpf_loop(FP_MAX_STEPS, walk_step, &w, 0);
	}
	s->bytes += skb->len;
	return bpf_sk_redirect_hash(skb, &fp_clients, &s->client, 0);
}

char __license[] SEC("license") = "GPL";
