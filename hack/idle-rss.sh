#!/usr/bin/env bash
# Memory of idle client connections: starts a throwaway PostgreSQL (max_connections = N + 100)
# and pgproxy in front of it, reads the proxy's VmRSS from /proc, opens N client connections
# through it with `loadgen -idle` (each authenticates with SCRAM, runs one SELECT, then stays
# idle), reads VmRSS again, and reports the growth per connection.
#
# Environment:
#   IDLE_CONNS   connections to open (1000)
#   IDLE_RAMPUP  time over which they are opened (10s)
#   IDLE_SETTLE  seconds to wait after the last one before reading RSS (3)
#   IDLE_TARGET_KIB  the per-connection budget the verdict line checks (100)
#   PG_BIN_DIR and pgproxy variables as for hack/bench.sh (LOG_LEVEL defaults to warn).
set -euo pipefail

log_prefix=idle-rss
# shellcheck source=hack/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

conns="${IDLE_CONNS:-1000}"
rampup="${IDLE_RAMPUP:-10s}"
settle="${IDLE_SETTLE:-3}"
budget="${IDLE_TARGET_KIB:-100}"
user=idle
pass="idle-$RANDOM$RANDOM"
db=idle

# rss_kib PID prints VmRSS of the process in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# status_kib PID FIELD prints another size field of /proc/PID/status in KiB.
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

bench_init idle-rss
pg_create $((conns + 100))
pg_user "$user" "$pass" "$db"
proxy_build
(cd "$root" && go build -o "$workdir/loadgen" ./cmd/loadgen) || die "cmd/loadgen does not build"
proxy_start "$db" MAX_CLIENT_CONNS=$((conns + 100))

sleep 1
before="$(rss_kib "$proxy_pid")"
log "proxy RSS before: $before KiB ($(threads "$proxy_pid") threads)"

log "opening $conns idle connections over $rampup"
"$workdir/loadgen" -conn "postgres://$user:$pass@127.0.0.1:$proxy_port/$db?sslmode=disable&connect_timeout=30" \
	-workers "$conns" -rampup "$rampup" -duration 0 -idle -progress 0 -query "SELECT 1" \
	>"$workdir/loadgen.out" 2>"$workdir/loadgen.err" &
loadgen_pid=$!
bg_pids+=("$loadgen_pid")
for _ in $(seq 1200); do
	grep -q "idle: $conns connections open" "$workdir/loadgen.err" && break
	if ! kill -0 "$loadgen_pid" 2>/dev/null; then
		cat "$workdir/loadgen.err" "$workdir/loadgen.out" >&2
		tail -20 "$workdir/pgproxy.log" >&2
		die "loadgen exited before all connections were open"
	fi
	sleep 0.1
done
grep -q "idle: $conns connections open" "$workdir/loadgen.err" || die "connections not open after 120 s"
sleep "$settle"
server_sessions="$(pg_sql postgres -tAc "SELECT count(*) FROM pg_stat_activity WHERE usename = '$user'")"
after="$(rss_kib "$proxy_pid")"
hwm="$(status_kib "$proxy_pid" VmHWM)"
th="$(threads "$proxy_pid")"

kill -INT "$loadgen_pid"
wait "$loadgen_pid" || log "loadgen exited with status $?"
sleep "$settle"
closed="$(rss_kib "$proxy_pid")"

per_conn="$(awk -v a="$after" -v b="$before" -v n="$conns" 'BEGIN {printf "%.1f", (a - b) / n}')"
verdict="met"
awk -v p="$per_conn" -v t="$budget" 'BEGIN {exit !(p < t)}' || verdict="NOT met"

echo
echo "pgproxy RSS with $conns idle client connections (each with its backend connection; $server_sessions server sessions seen)"
printf '  %-34s %8s KiB\n' "before" "$before" "with $conns idle connections" "$after" "peak (VmHWM)" "$hwm" \
	"after they closed" "$closed"
printf '  %-34s %8s KiB   (budget < %s KiB: %s)\n' "per connection" "$per_conn" "$budget" "$verdict"
printf '  %-34s %8s\n' "proxy threads while idle" "$th"
echo
grep -E '^(queries|latency)' "$workdir/loadgen.out" | sed 's/^/  loadgen /'
