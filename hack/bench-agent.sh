#!/usr/bin/env bash
# The transparent path in `make bench`: pgbench select-only through `pgproxy agent`, next to
# PostgreSQL directly and the explicit proxy, with the sk_msg local-hop shortcut off and on.
#
# Run it (as root) to get hack/bench.sh's table with two more targets:
#
#   hack/bench-agent.sh            # direct, proxy, agent, accel at 1 and 8 clients
#
#   agent  pgproxy agent, ACCELERATE_LOCAL=false
#   accel  pgproxy agent, ACCELERATE_LOCAL=true
#
# Each agent target gets a child cgroup v2 of its own; the agent is started inside it and
# intercepts it (INTERCEPT_CGROUP), and pgbench runs inside it too, dialling the database at
# 127.0.0.2:PORT as an application would. The agent's own backend sockets carry its mark and are
# not redirected. The agent runs inside the intercepted cgroup, as a node agent does with the
# default cgroup2 root (an agent outside it attaches sockops to its own cgroup as well). The
# throwaway cluster of bench.sh is restarted once to listen on 127.0.0.2 as well as 127.0.0.1.
#
# Sourced (by hack/bench.sh or another script that has sourced hack/bench-lib.sh), it only
# defines target_agent_start/_pgbench and target_accel_start/_pgbench; add agent and accel to
# BENCH_TARGETS to use them.
#
# Environment: everything hack/bench.sh reads. Defaults changed here:
#   BENCH_TARGETS   (direct proxy agent accel)
#   BENCH_RATIOS    (proxy/direct agent/direct accel/direct accel/agent)
#   BENCH_CLIENTS   (1 8)
#   BENCH_GO        (0)
#   AGENT_BENCH_ADDR the address pgbench dials and the agent intercepts (127.0.0.2)

# agent_bench_cgroup_root prints the cgroup v2 mount point.
agent_bench_cgroup_root() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo
}

# agent_bench_http_get HOST PORT PATH prints the body of an HTTP/1.0 GET.
agent_bench_http_get() {
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
		sed '1,/^\r$/d' <&3
	) 2>/dev/null
}

# agent_bench_metric HEALTH_PORT NAME prints one metric of an agent (0 when absent).
agent_bench_metric() {
	agent_bench_http_get 127.0.0.1 "$1" /metrics | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# agent_bench_listen_on_bench_addr restarts the cluster once so that it listens on
# AGENT_BENCH_ADDR too (bench-lib's pg_create listens on 127.0.0.1 only).
agent_bench_listen_on_bench_addr() {
	local addr="${AGENT_BENCH_ADDR:-127.0.0.2}"
	[ -n "${agent_bench_pg_ready:-}" ] && return 0
	if [ "$addr" != 127.0.0.1 ]; then
		local opts
		opts="$(sed -e 's/^[^ ]* //' -e 's/"//g' "$workdir/data/postmaster.opts")"
		opts="${opts//listen_addresses=127.0.0.1/listen_addresses=127.0.0.1,$addr}"
		as_pg "$pg_bin/pg_ctl" -D "$workdir/data" -w -t 60 -m fast -l "$workdir/postgres.log" -o "$opts" restart >/dev/null ||
			die "postgres did not restart to listen on $addr"
		log "PostgreSQL now also listens on $addr:$pg_port"
	fi
	agent_bench_pg_ready=1
}

# agent_bench_cleanup stops the agents and pgbench runs in the bench cgroups and removes them,
# then runs bench-lib's cleanup (which keeps the exit status).
agent_bench_cleanup() {
	local status=$? cg pid
	for pid in "${agent_bench_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	for cg in "${agent_bench_cgroups[@]}"; do
		[ -d "$cg" ] || continue
		echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
		for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
		[ -d "$cg" ] && log "could not remove cgroup $cg"
	done
	(exit "$status")
	bench_cleanup
}

# agent_bench_start NAME ACCELERATE starts an agent inside a child cgroup of its own that it
# intercepts, and checks that a connection from the cgroup is redirected.
agent_bench_start() {
	local name="$1" accel="$2" addr="${AGENT_BENCH_ADDR:-127.0.0.2}"
	$is_root || die "the agent targets need root (eBPF, cgroups)"
	[ -x "$workdir/pgproxy" ] || proxy_build
	agent_bench_listen_on_bench_addr
	local root
	root="$(agent_bench_cgroup_root)"
	[ -n "$root" ] || die "no cgroup v2 mount in /proc/self/mountinfo"
	if [ -z "${agent_bench_trap:-}" ]; then
		agent_bench_pids=() agent_bench_cgroups=()
		trap agent_bench_cleanup EXIT
		agent_bench_trap=1
	fi
	declare -gA agent_bench_cg agent_bench_health
	local cg="$root/pgproxy-bench-$$-$name"
	mkdir "$cg" || die "cannot create cgroup $cg"
	agent_bench_cgroups+=("$cg")
	local port health
	port="$(free_port)"
	health="$(free_port)"
	[ "$health" = "$port" ] && health=$((port + 1))
	(
		echo "$BASHPID" >"$cg/cgroup.procs"
		exec env INTERCEPT_CGROUP="$cg" INTERCEPT_TARGETS="$addr:$pg_port" \
			AGENT_LISTEN_ADDR="127.0.0.1:$port" HEALTH_CHECK_ADDR="127.0.0.1:$health" \
			ACCELERATE_LOCAL="$accel" MAX_CONNS_PER_IP_PER_MIN=0 MAX_CLIENT_CONNS=0 \
			LOG_LEVEL="${LOG_LEVEL:-warn}" LOG_FORMAT=text \
			"$workdir/pgproxy" agent >>"$workdir/agent-$name.log" 2>&1
	) &
	local pid=$!
	agent_bench_pids+=("$pid")
	bg_pids+=("$pid")
	for _ in $(seq 150); do
		http_ok 127.0.0.1 "$health" /health && break
		kill -0 "$pid" 2>/dev/null || {
			cat "$workdir/agent-$name.log" >&2
			die "pgproxy agent ($name) exited during start-up"
		}
		sleep 0.1
	done
	http_ok 127.0.0.1 "$health" /health || die "pgproxy agent ($name) /health did not answer within 15 s"
	agent_bench_cg[$name]="$cg"
	agent_bench_health[$name]="$health"
	target_host[$name]="$addr"
	target_port[$name]="$pg_port"
	local before after
	before="$(agent_bench_metric "$health" pgproxy_bpf_connect4_redirects_total)"
	agent_bench_in_cgroup "$name" psql -X -q -A -t -h "$addr" -p "$pg_port" -U "$bench_user" -d "$bench_db" -c 'SELECT 1' >/dev/null ||
		die "psql inside $cg could not reach $addr:$pg_port through the agent"
	after="$(agent_bench_metric "$health" pgproxy_bpf_connect4_redirects_total)"
	[ "$after" -gt "$before" ] || die "a connect from $cg was not redirected (pgproxy_bpf_connect4_redirects_total $before → $after)"
	log "pgproxy agent ($name, ACCELERATE_LOCAL=$accel) on 127.0.0.1:$port intercepting $addr:$pg_port for $cg (pid $pid)"
}

# agent_bench_in_cgroup NAME CMD... runs CMD inside the cgroup of agent target NAME.
agent_bench_in_cgroup() {
	local cg="${agent_bench_cg[$1]}"
	shift
	(
		echo "$BASHPID" >"$cg/cgroup.procs"
		PGPASSWORD="$bench_pass" exec "$@"
	)
}

# agent_bench_pgbench NAME ARGS... runs pgbench in the target's cgroup against the database
# address; the agent takes the connections. It logs the shortcut counters with acceleration.
agent_bench_pgbench() {
	local name="$1"
	shift
	agent_bench_in_cgroup "$name" pgbench -h "${target_host[$name]}" -p "${target_port[$name]}" "$@"
}

target_agent_start() { agent_bench_start agent false; }
target_agent_pgbench() { agent_bench_pgbench agent "$@"; }
target_accel_start() { agent_bench_start accel true; }
target_accel_pgbench() { agent_bench_pgbench accel "$@"; }

# Executed (not sourced): run bench.sh with the agent targets added.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	[ "$(id -u)" = 0 ] || {
		echo "bench-agent: needs root (eBPF programs, cgroups)" >&2
		exit 1
	}
	export BENCH_TARGETS="${BENCH_TARGETS:-direct proxy agent accel}"
	export BENCH_RATIOS="${BENCH_RATIOS:-proxy/direct agent/direct accel/direct accel/agent}"
	export BENCH_CLIENTS="${BENCH_CLIENTS:-1 8}"
	export BENCH_GO="${BENCH_GO:-0}"
	export -f agent_bench_cgroup_root agent_bench_http_get agent_bench_metric agent_bench_listen_on_bench_addr \
		agent_bench_cleanup agent_bench_start agent_bench_in_cgroup agent_bench_pgbench \
		target_agent_start target_agent_pgbench target_accel_start target_accel_pgbench
	exec "$(dirname "$0")/bench.sh" "$@"
fi
