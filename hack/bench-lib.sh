# Shared helpers of hack/bench.sh and hack/idle-rss.sh; source it, do not run it.
#
# bench_init makes a temporary folder and installs an EXIT trap that stops every process
# started here and removes the folder. pg_create starts a throwaway PostgreSQL in it, and
# proxy_start a pgproxy built from this checkout. Variables the callers read: root, workdir,
# pg_port, pg_bin, is_root.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pg_bin="${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"
is_root=false
[ "$(id -u)" = 0 ] && is_root=true
workdir=""
pg_port=""
log_prefix="${log_prefix:-bench}"
# pids of background processes to stop on exit (newest last); pidfile_procs are pidfiles of
# daemons (PgBouncer) to stop the same way.
bg_pids=()
pidfile_procs=()

log() { echo "$log_prefix: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# as_pg runs a program as the postgres OS user when we are root (initdb, postgres and PgBouncer
# refuse to run as root).
as_pg() { if $is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback TCP port nobody listens on, from a random start in 20000-39999.
free_port() {
	local p=$((20000 + RANDOM % 20000))
	while port_in_use "$p"; do p=$((p + 1)); done
	echo "$p"
}

# http_ok reports whether GET http://host:port/path answers 200.
http_ok() {
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		[[ $line == *" 200"* ]]
	) 2>/dev/null
}

# bench_init NAME creates the work folder and the cleanup trap.
bench_init() {
	[ -x "$pg_bin/initdb" ] || die "PostgreSQL programs not found in $pg_bin (set PG_BIN_DIR, or run hack/ensure-deps.sh)"
	command -v go >/dev/null || die "go is not on PATH"
	workdir="$(mktemp -d "/tmp/pgproxy-$1.XXXXXX")"
	chmod 755 "$workdir"
	if $is_root; then chown postgres: "$workdir"; fi
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# proc_stop PID stops a process started in the background (TERM, then KILL after 5 s;
# wait only works for our own children, so it polls).
proc_stop() {
	kill "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# bench_cleanup stops what was started (newest first), the cluster, and removes the folder.
bench_cleanup() {
	local status=$?
	trap - EXIT INT TERM
	local i pid
	for ((i = ${#bg_pids[@]} - 1; i >= 0; i--)); do
		proc_stop "${bg_pids[$i]}"
	done
	for f in "${pidfile_procs[@]}"; do
		if [ -s "$f" ] && pid="$(head -1 "$f")" && kill "$pid" 2>/dev/null; then
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	done
	if [ -n "$workdir" ] && [ -f "$workdir/data/postmaster.pid" ]; then
		as_pg "$pg_bin/pg_ctl" -D "$workdir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ -n "$workdir" ] && rm -rf "$workdir"
	log "cleaned up"
	exit "$status"
}

# pg_create MAX_CONNECTIONS [extra -c settings...] runs initdb (SCRAM over TCP, trust on the
# unix socket for the superuser) and starts the server on a free loopback port.
pg_create() {
	local max_conns="$1"
	shift
	local opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$workdir"
	opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	opts+=" -c password_encryption=scram-sha-256 -c max_connections=$max_conns"
	local extra
	for extra in "$@"; do opts+=" -c $extra"; done
	as_pg "$pg_bin/initdb" -D "$workdir/data" -U postgres -E UTF8 --locale=C --no-sync \
		--auth-local=trust --auth-host=scram-sha-256 --no-instructions >/dev/null
	pg_port="$(free_port)"
	as_pg "$pg_bin/pg_ctl" -D "$workdir/data" -w -t 60 -l "$workdir/postgres.log" -o "-p $pg_port $opts" start >/dev/null ||
		{
			cat "$workdir/postgres.log" >&2
			die "postgres did not start"
		}
	log "PostgreSQL $(pg_sql postgres -tAc 'SHOW server_version') on 127.0.0.1:$pg_port (max_connections=$max_conns, fsync=off)"
}

# pg_sql DB ARGS... runs psql as the superuser over the unix socket.
pg_sql() {
	local db="$1"
	shift
	as_pg "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$workdir" -p "$pg_port" -U postgres -d "$db" "$@"
}

# pg_user USER PASSWORD DB creates a login role with a SCRAM password and a database it owns.
pg_user() {
	pg_sql postgres -c "CREATE ROLE $1 LOGIN PASSWORD '$2'" -c "CREATE DATABASE $3 OWNER $1"
}

# proxy_build builds cmd/pgproxy from this checkout into the work folder (once: a target
# started again reuses the binary).
proxy_build() {
	[ -x "$workdir/pgproxy" ] && return 0
	(cd "$root" && go build -o "$workdir/pgproxy" ./cmd/pgproxy) || die "cmd/pgproxy does not build"
}

# proxy_build_rev REV OUT builds cmd/pgproxy as of git revision REV into OUT (for
# before/after comparisons in one run), once.
proxy_build_rev() {
	local rev="$1" out="$2" src="$workdir/src-$1"
	[ -x "$out" ] && return 0
	mkdir -p "$src"
	git -C "$root" archive "$rev" | tar -x -C "$src" || die "git archive $rev failed"
	(cd "$src" && go build -o "$out" ./cmd/pgproxy) || die "cmd/pgproxy of $rev does not build"
}

# proxy_start DB [VAR=value...] starts the proxy ($proxy_bin, default the one proxy_build
# made) in front of the cluster on free loopback ports and waits for /health. Sets
# proxy_port, proxy_pid. Connection limits are off unless the arguments set them; LOG_LEVEL
# defaults to warn.
proxy_start() {
	local db="$1"
	shift
	proxy_port="$(free_port)"
	local health_port
	health_port="$(free_port)"
	[ "$health_port" = "$proxy_port" ] && health_port=$((proxy_port + 1))
	env LISTEN_ADDR="127.0.0.1:$proxy_port" HEALTH_CHECK_ADDR="127.0.0.1:$health_port" \
		PG_BACKEND_URL="postgres://127.0.0.1:$pg_port/$db?sslmode=disable" \
		MAX_CONNS_PER_IP_PER_MIN=0 MAX_CLIENT_CONNS=0 LOG_LEVEL="${LOG_LEVEL:-warn}" LOG_FORMAT=text \
		"$@" "${proxy_bin:-$workdir/pgproxy}" >>"$workdir/pgproxy.log" 2>&1 &
	proxy_pid=$!
	bg_pids+=("$proxy_pid")
	for _ in $(seq 150); do
		http_ok 127.0.0.1 "$health_port" /health && break
		kill -0 "$proxy_pid" 2>/dev/null || {
			cat "$workdir/pgproxy.log" >&2
			die "pgproxy exited during start-up"
		}
		sleep 0.1
	done
	http_ok 127.0.0.1 "$health_port" /health || die "pgproxy /health did not answer within 15 s"
	log "pgproxy on 127.0.0.1:$proxy_port (pid $proxy_pid)"
}
