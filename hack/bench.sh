#!/usr/bin/env bash
# pgbench select-only through each target — PostgreSQL directly, pgproxy, PgBouncer — on a
# throwaway cluster, and a table of the median TPS and the ratios. `make bench` runs it.
#
# For every protocol and client count the targets are measured in interleaved rounds, so
# that drift of a noisy machine hits them alike, and each round starts one target further
# along the list (direct proxy pgbouncer, then proxy pgbouncer direct, ...), so that no
# target always runs first or right after the same one. A TPS figure is the median of the
# rounds; a ratio A/B is the median of the rounds' own ratios (A and B measured minutes
# apart in the same round, not the medians' ratio). For targets that are a pgproxy process, a
# second table gives the median CPU time (user + system, from /proc) the process spent per
# transaction: a steadier figure than TPS on a shared machine. Then the Go benchmark of the
# DataRow relay.
#
# A pgproxy process keeps its own speed for as long as it lives: two processes of the same
# binary and settings can differ by 5% in TPS and 20% in CPU per transaction, round after
# round (where the kernel put its threads, how its memory fell). So every BENCH_RESTART
# rounds each pgproxy target is stopped, started again and warmed up, and a median spans
# several processes per target; the proxy2 target (a second passthrough proxy, the same as
# proxy) shows what is left of that: proxy2/proxy should read 1.00.
#
# Environment:
#   BENCH_SECONDS   length of one pgbench run (10)
#   BENCH_ROUNDS    runs per target and setting; the median is reported (3)
#   BENCH_CLIENTS   client counts (1 8 32); pgbench -j is min(clients, 2)
#   BENCH_PROTOCOLS pgbench -M values (simple prepared)
#   BENCH_TARGETS   targets in the order they run in the first round (direct proxy guard pgbouncer);
#                   guard is the proxy with the guardrails on (ANALYSIS_ENABLED=true,
#                   PROXY_MODE=blocking): after the warm-up every decision comes from the cache;
#                   mask is the proxy with data masking on (pgbench touches no masked table);
#                   proxy2 is a second passthrough proxy (the noise floor: proxy2/proxy)
#   BENCH_RESTART   start the pgproxy targets again every this many rounds (5; 0: never)
#   BENCH_RATIOS    ratio columns, A/B target pairs (proxy/direct guard/proxy proxy/pgbouncer)
#   BENCH_SCALE     pgbench -i scale (10)
#   BENCH_WARMUP    seconds of warm-up per target before measuring, 0 for none (3)
#   BENCH_GO=0      skip the Go benchmark
#   BENCH_RESULTS   file to copy every run's TPS to ("protocol clients round target tps cpu" lines,
#                   cpu the proxy process's µs per transaction, - for other targets)
#   BENCH_BASELINE  git revision built for the "baseline" target (HEAD~1), e.g.
#                   BENCH_TARGETS="direct baseline proxy pgbouncer" BENCH_RATIOS="proxy/baseline proxy/pgbouncer"
#   PG_BIN_DIR      PostgreSQL server programs (/usr/lib/postgresql/15/bin)
#   LOG_LEVEL and other pgproxy variables pass through to the proxy (LOG_LEVEL defaults to warn).
#
# Adding a target (the eBPF transparent path, say): write target_NAME_start, which starts what
# the target needs and sets target_host[NAME] and target_port[NAME]; optionally
# target_NAME_pgbench, which runs pgbench its own way (it gets pgbench's arguments without
# -h/-p and must print pgbench's output); then add NAME to BENCH_TARGETS.
set -euo pipefail

log_prefix=bench
# shellcheck source=hack/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

seconds="${BENCH_SECONDS:-10}"
rounds="${BENCH_ROUNDS:-3}"
read -r -a clients_list <<<"${BENCH_CLIENTS:-1 8 32}"
read -r -a protocols <<<"${BENCH_PROTOCOLS:-simple prepared}"
read -r -a targets <<<"${BENCH_TARGETS:-direct proxy guard pgbouncer}"
read -r -a ratios <<<"${BENCH_RATIOS:-proxy/direct guard/proxy proxy/pgbouncer}"
scale="${BENCH_SCALE:-10}"
restart_every="${BENCH_RESTART:-5}"
warmup="${BENCH_WARMUP:-3}"

bench_user=bench
bench_pass="bench-$RANDOM$RANDOM"
bench_db=bench

declare -A target_host target_port target_pid

# --- targets -------------------------------------------------------------------------------

# proxy_target NAME points target NAME at the pgproxy proxy_start just started (its address,
# and its process for the CPU table).
proxy_target() {
	target_host[$1]=127.0.0.1
	target_port[$1]="$proxy_port"
	target_pid[$1]="$proxy_pid"
}

# target_direct_start: pgbench talks to PostgreSQL itself.
target_direct_start() {
	target_host[direct]=127.0.0.1
	target_port[direct]="$pg_port"
}

# target_proxy_start: pgproxy built from this checkout, passthrough auth, no policy.
target_proxy_start() {
	proxy_build
	proxy_start "$bench_db"
	proxy_target proxy
}

# target_proxy2_start: a second passthrough proxy, started the same way as proxy.
target_proxy2_start() {
	proxy_build
	proxy_start "$bench_db"
	proxy_target proxy2
}

# target_guard_start: the proxy target with the guardrails on, in blocking mode: every read is
# judged (pgbench -S's one shape is efficient: an index lookup), the decision cached in process
# after the first; the analysis logs in with the bench user (PG_BACKEND_URL with credentials).
target_guard_start() {
	proxy_build
	proxy_start "$bench_db" ANALYSIS_ENABLED=true PROXY_MODE=blocking \
		PG_BACKEND_URL="postgres://$bench_user:$bench_pass@127.0.0.1:$pg_port/$bench_db?sslmode=disable"
	proxy_target guard
}

# target_mask_start: the proxy target with data masking on: a customers table of the bench
# database has masked columns, and pgbench's statements touch no masked table (they are
# forwarded unchanged after one look per statement shape).
target_mask_start() {
	proxy_build
	pg_sql "$bench_db" -qc "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS customers (id int PRIMARY KEY, email text, ssn text);
		GRANT SELECT ON customers TO $bench_user"
	cat >"$workdir/masking.yaml" <<-YAML
		version: "1.0"
		tables:
		  - table: customers
		    columns:
		      - {name: email, mask_type: email}
		      - {name: ssn, mask_type: full}
	YAML
	proxy_start "$bench_db" MASKING_ENABLED=true MASKING_CONFIG_PATH="$workdir/masking.yaml" \
		PG_BACKEND_URL="postgres://$bench_user:$bench_pass@127.0.0.1:$pg_port/$bench_db?sslmode=disable"
	proxy_target mask
}

# target_baseline_start: pgproxy built from git revision $BENCH_BASELINE, as the proxy
# target runs (a before/after comparison in one interleaved run).
target_baseline_start() {
	local rev="${BENCH_BASELINE:-HEAD~1}"
	proxy_build_rev "$rev" "$workdir/pgproxy-baseline"
	proxy_bin="$workdir/pgproxy-baseline" proxy_start "$bench_db"
	log "baseline: pgproxy at $(git -C "$root" rev-parse --short "$rev")"
	proxy_target baseline
}

# target_pgbouncer_start: PgBouncer in session pooling mode in front of the same server. It
# authenticates clients with SCRAM from an auth_file holding the role's SCRAM secret, and
# reuses the client's SCRAM keys to log in to PostgreSQL.
target_pgbouncer_start() {
	command -v pgbouncer >/dev/null || die "pgbouncer not found (apt-get install pgbouncer, or run hack/ensure-deps.sh)"
	local dir="$workdir/pgbouncer" port secret
	mkdir -p "$dir"
	port="$(free_port)"
	secret="$(pg_sql postgres -tAc "SELECT rolpassword FROM pg_authid WHERE rolname = '$bench_user'")"
	[[ $secret == SCRAM-SHA-256\$* ]] || die "no SCRAM secret for $bench_user in pg_authid"
	printf '"%s" "%s"\n' "$bench_user" "$secret" >"$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<-INI
		[databases]
		$bench_db = host=127.0.0.1 port=$pg_port dbname=$bench_db

		[pgbouncer]
		listen_addr = 127.0.0.1
		listen_port = $port
		unix_socket_dir =
		auth_type = scram-sha-256
		auth_file = $dir/userlist.txt
		pool_mode = session
		max_client_conn = 2000
		default_pool_size = 50
		ignore_startup_parameters = extra_float_digits
		log_connections = 0
		log_disconnections = 0
		logfile = $dir/pgbouncer.log
		pidfile = $dir/pgbouncer.pid
	INI
	chmod 600 "$dir/userlist.txt"
	if $is_root; then chown -R postgres: "$dir"; fi
	pidfile_procs+=("$dir/pgbouncer.pid")
	as_pg pgbouncer -d -q "$dir/pgbouncer.ini" || {
		cat "$dir/pgbouncer.log" >&2 || true
		die "pgbouncer did not start"
	}
	for _ in $(seq 50); do port_in_use "$port" && break; sleep 0.1; done
	port_in_use "$port" || die "pgbouncer is not listening on $port"
	log "$(pgbouncer --version | head -1) on 127.0.0.1:$port (session pooling, pool size 50)"
	target_host[pgbouncer]=127.0.0.1
	target_port[pgbouncer]="$port"
}

# --- measuring -----------------------------------------------------------------------------

# run_pgbench TARGET ARGS... runs pgbench against TARGET and prints its output.
run_pgbench() {
	local t="$1"
	shift
	if declare -F "target_${t}_pgbench" >/dev/null; then
		"target_${t}_pgbench" "$@"
	else
		PGPASSWORD="$bench_pass" pgbench -h "${target_host[$t]}" -p "${target_port[$t]}" "$@"
	fi
}

# cpu_ticks PID prints the user + system CPU time of process PID in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# measure TARGET PROTOCOL CLIENTS SECONDS prints the TPS of one select-only run and, for a
# target with a process (target_pid), its CPU µs per transaction, else "-" ("" on failure).
measure() {
	local t="$1" proto="$2" clients="$3" secs="$4" out pid="${target_pid[$1]:-}" t0=0 t1 tps tx
	local jobs=$((clients < 2 ? clients : 2))
	[ -n "$pid" ] && t0="$(cpu_ticks "$pid")"
	if ! out="$(run_pgbench "$t" -n -S -M "$proto" -c "$clients" -j "$jobs" -T "$secs" -U "$bench_user" "$bench_db" 2>&1)"; then
		log "pgbench against $t failed:"
		echo "$out" | tail -5 >&2
		return 0
	fi
	tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' <<<"$out")"
	[ -n "$tps" ] || return 0
	tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
	if [ -n "$pid" ] && [ "${tx:-0}" -gt 0 ]; then
		t1="$(cpu_ticks "$pid")"
		echo "$tps $(awk -v d=$((t1 - t0)) -v hz="$clk_tck" -v n="$tx" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
	else
		echo "$tps -"
	fi
}

# restart_proxies stops every target that is a pgproxy process, starts it again and warms it
# up with a short run of the setting about to be measured.
restart_proxies() {
	local t
	for t in "${targets[@]}"; do
		[ -n "${target_pid[$t]:-}" ] || continue
		proc_stop "${target_pid[$t]}"
		"target_${t}_start"
		[ -n "$(measure "$t" "$1" "$2" 1)" ] || die "warm-up run against $t failed after its restart"
	done
}

# median prints the median of its numeric arguments ("" when there are none).
median() {
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cell_median PROTOCOL CLIENTS TARGET FIELD prints the median of field FIELD of the results
# lines of that setting and target (5: TPS, 6: CPU µs per transaction; "-" values skipped).
cell_median() {
	# shellcheck disable=SC2046
	median $(awk -v p="$1" -v c="$2" -v t="$3" -v f="$4" '$1 == p && $2 == c && $4 == t && $f != "-" {print $f}' "$results")
}

# --- main ----------------------------------------------------------------------------------

command -v pgbench >/dev/null || die "pgbench not found (apt-get install postgresql-client-15)"
clk_tck="$(getconf CLK_TCK)"
bench_init bench
log "machine: $(nproc) CPUs, $(uname -sr), $(go version | cut -d' ' -f3)"
pg_create 200 "shared_buffers=256MB"
pg_user "$bench_user" "$bench_pass" "$bench_db"
log "pgbench -i -s $scale"
PGPASSWORD="$bench_pass" pgbench -i -q -s "$scale" -h 127.0.0.1 -p "$pg_port" -U "$bench_user" "$bench_db" >"$workdir/pgbench-init.log" 2>&1 ||
	{
		cat "$workdir/pgbench-init.log" >&2
		die "pgbench -i failed"
	}
for t in "${targets[@]}"; do
	declare -F "target_${t}_start" >/dev/null || die "unknown target $t (no function target_${t}_start)"
	"target_${t}_start"
done

if [ "$warmup" -gt 0 ]; then
	for t in "${targets[@]}"; do
		log "warm-up: $t, ${warmup}s"
		[ -n "$(measure "$t" prepared 8 "$warmup")" ] || die "warm-up run against $t failed"
	done
fi

results="$workdir/results"
: >"$results"
total=$((${#protocols[@]} * ${#clients_list[@]} * rounds * ${#targets[@]}))
n=0 g=0
restarts=0
[ "$restart_every" -gt 0 ] && restarts=$(((${#protocols[@]} * ${#clients_list[@]} * rounds - 1) / restart_every))
log "$total runs of ${seconds}s and $restarts restarts of the pgproxy targets: about $((total * (seconds + 1) / 60 + 1)) minutes and the restarts"
for proto in "${protocols[@]}"; do
	for clients in "${clients_list[@]}"; do
		for ((round = 1; round <= rounds; round++)); do
			g=$((g + 1))
			if [ "$restart_every" -gt 0 ] && [ "$g" -gt 1 ] && [ $(((g - 1) % restart_every)) = 0 ]; then
				log "starting the pgproxy targets again (every $restart_every rounds)"
				restart_proxies "$proto" "$clients"
			fi
			for ((i = 0; i < ${#targets[@]}; i++)); do
				t="${targets[$(((i + round - 1) % ${#targets[@]}))]}"
				n=$((n + 1))
				read -r tps cpu <<<"$(measure "$t" "$proto" "$clients" "$seconds")" || true
				note=""
				[ -n "${cpu:-}" ] && [ "$cpu" != - ] && note=", $cpu µs CPU/tx"
				log "[$n/$total] $proto c=$clients round $round/$rounds $t: ${tps:-FAILED} tps$note"
				if [ -n "$tps" ]; then echo "$proto $clients $round $t $tps $cpu" >>"$results"; fi
			done
		done
	done
done

# The table: median TPS per target, then the ratio columns (median of per-round ratios).
header=$(printf '%-9s %7s' protocol clients)
for t in "${targets[@]}"; do header+=$(printf ' %14s' "$t TPS"); done
for r in "${ratios[@]}"; do header+=$(printf ' %15s' "$r"); done
echo
echo "pgbench -S, ${rounds} interleaved rounds of ${seconds}s, median TPS, ratios: median of the rounds' ratios (scale $scale, $(nproc) CPUs)"
echo "$header"
for proto in "${protocols[@]}"; do
	for clients in "${clients_list[@]}"; do
		declare -A med=()
		line=$(printf '%-9s %7s' "$proto" "$clients")
		for t in "${targets[@]}"; do
			med[$t]="$(cell_median "$proto" "$clients" "$t" 5)"
			line+=$(printf ' %14s' "$(printf '%.0f' "${med[$t]:-0}")")
		done
		for r in "${ratios[@]}"; do
			a="${r%/*}" b="${r#*/}"
			# shellcheck disable=SC2046
			ratio="$(median $(awk -v p="$proto" -v c="$clients" -v a="$a" -v b="$b" '
				$1 == p && $2 == c && $4 == a {ta[$3] = $5}
				$1 == p && $2 == c && $4 == b {tb[$3] = $5}
				END {for (r in ta) if ((r in tb) && tb[r] > 0) print ta[r] / tb[r]}' "$results"))"
			if [ -n "$ratio" ]; then
				line+=$(printf ' %15s' "$(printf '%.2f' "$ratio")")
			else
				line+=$(printf ' %15s' "n/a")
			fi
		done
		echo "$line"
		unset med
	done
done
echo
# The rounds' ratios behind each ratio column, in round order: how far one round can be off.
for r in "${ratios[@]}"; do
	a="${r%/*}" b="${r#*/}"
	for proto in "${protocols[@]}"; do
		for clients in "${clients_list[@]}"; do
			each="$(awk -v p="$proto" -v c="$clients" -v a="$a" -v b="$b" '
				$1 == p && $2 == c && $4 == a {ta[$3] = $5}
				$1 == p && $2 == c && $4 == b {tb[$3] = $5}
				END {for (r = 1; r in ta || r in tb; r++) printf "%s ", ((r in ta) && (r in tb) && tb[r] > 0) ? sprintf("%.2f", ta[r] / tb[r]) : "-"}' "$results")"
			printf '%-20s %-9s %3s clients: %s\n' "$r by round" "$proto" "$clients" "$each"
		done
	done
done
echo
# The proxy processes' CPU per transaction: median of the rounds, per target with a process.
cpu_targets=()
for t in "${targets[@]}"; do [ -n "${target_pid[$t]:-}" ] && cpu_targets+=("$t"); done
if [ ${#cpu_targets[@]} -gt 0 ]; then
	echo "CPU time of the proxy process per transaction (user + system, µs, median of the rounds)"
	header=$(printf '%-9s %7s' protocol clients)
	for t in "${cpu_targets[@]}"; do header+=$(printf ' %14s' "$t"); done
	echo "$header"
	for proto in "${protocols[@]}"; do
		for clients in "${clients_list[@]}"; do
			line=$(printf '%-9s %7s' "$proto" "$clients")
			for t in "${cpu_targets[@]}"; do
				m="$(cell_median "$proto" "$clients" "$t" 6)"
				[ -n "$m" ] && m="$(printf '%.1f' "$m")"
				line+=$(printf ' %14s' "${m:-n/a}")
			done
			echo "$line"
		done
	done
	echo
fi
if [ -n "${BENCH_RESULTS:-}" ]; then
	cp "$results" "$BENCH_RESULTS"
	log "every run's TPS and CPU per transaction: $BENCH_RESULTS"
fi

if [ "${BENCH_GO:-1}" != 0 ]; then
	log "go test -run XXX -bench BenchmarkStreamDataRow -benchmem ./userspace/wire"
	(cd "$root" && go test -run XXX -bench BenchmarkStreamDataRow -benchmem ./userspace/wire) | grep -E '^(Benchmark|cpu:)' ||
		log "the DataRow benchmark failed"
fi
