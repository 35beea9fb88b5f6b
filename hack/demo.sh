#!/usr/bin/env bash
# A throwaway PostgreSQL 15 with a sample `shop` database (hack/demo-data.sql), and pgproxy in
# front of it. Prints how to connect; Ctrl-C stops both and removes the temporary folder.
#
# Data masking is on (hack/demo-masking.yaml: the customers' names, emails, phones and national
# IDs are masked for everyone but the auditor login, with a random MASKING_HMAC_KEY).
# The guardrails are on (ANALYSIS_ENABLED=true, PROXY_MODE=blocking) with the reporter writing to
# the database pgproxy_reports of the same cluster; the proxy's own account for catalogs and plans
# is pgproxy_analysis (pg_read_all_data). With the hypopg extension installed, shop gets it, so
# suggested indexes are checked as hypothetical indexes.
#
# Environment: LISTEN_ADDR (:6432), HEALTH_CHECK_ADDR (:8080), DEMO_PG_PORT (first port tried
# for PostgreSQL, 5433), DEMO_PASSWORD (demo), PG_BIN_DIR (/usr/lib/postgresql/15/bin),
# PG_SHARE_DIR (/usr/share/postgresql/15), DEMO_NO_PROXY=1 (database only). Other proxy settings
# (PROXY_MODE, ANALYSIS_ENABLED, LOG_LEVEL, ALLOW_MD5_AUTH, ...) pass through to the proxy.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pg_bin="${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"
pg_share="${PG_SHARE_DIR:-/usr/share/postgresql/15}"
listen="${LISTEN_ADDR:-:6432}"
health="${HEALTH_CHECK_ADDR:-:8080}"
password="${DEMO_PASSWORD:-demo}"
is_root=false
[ "$(id -u)" = 0 ] && is_root=true

log() { echo "demo: $*" >&2; }
die() { log "$*"; exit 1; }

# as_pg runs a PostgreSQL program as the postgres OS user when we are root.
as_pg() { if $is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# host_of and port_of split "host:port" (":6432" means 127.0.0.1).
host_of() { local h="${1%:*}"; [ -z "$h" ] || [ "$h" = 0.0.0.0 ] && h=127.0.0.1; echo "$h"; }
port_of() { echo "${1##*:}"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_ok reports whether GET http://host:port/path answers 200.
http_ok() {
	(
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		[[ $line == *" 200"* ]]
	) 2>/dev/null
}

if [ ! -x "$pg_bin/initdb" ]; then
	$is_root || die "PostgreSQL 15 not found in $pg_bin (apt-get install postgresql-15)"
	log "installing postgresql-15"
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/pgproxy.conf
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
fi
[ "${DEMO_NO_PROXY:-}" = 1 ] || command -v go >/dev/null || die "go is not on PATH"

pg_port="${DEMO_PG_PORT:-5433}"
while port_in_use "$pg_port"; do pg_port=$((pg_port + 1)); done
if [ "${DEMO_NO_PROXY:-}" != 1 ]; then
	port_in_use "$(port_of "$listen")" && die "port of LISTEN_ADDR=$listen is in use; set LISTEN_ADDR"
	port_in_use "$(port_of "$health")" && die "port of HEALTH_CHECK_ADDR=$health is in use; set HEALTH_CHECK_ADDR"
fi

workdir="$(mktemp -d /tmp/pgproxy-demo.XXXXXX)"
$is_root && chown postgres: "$workdir"
proxy_pid=""

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; then
		wait "$proxy_pid" 2>/dev/null || true
	fi
	if [ -f "$workdir/data/postmaster.pid" ]; then
		as_pg "$pg_bin/pg_ctl" -D "$workdir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$workdir"
	log "stopped; removed $workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$workdir"
log "initdb in $workdir/data"
as_pg "$pg_bin/initdb" -D "$workdir/data" -U postgres -E UTF8 --locale=C --no-sync \
	--auth-local=trust --auth-host=scram-sha-256 --no-instructions >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$workdir/data" -w -l "$workdir/postgres.log" \
	-o "-p $pg_port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off -c password_encryption=scram-sha-256" \
	start >/dev/null || { cat "$workdir/postgres.log" >&2; die "postgres did not start"; }
log "PostgreSQL 15 on 127.0.0.1:$pg_port"

psql_as() { local user="$1" db="$2"; shift 2; as_pg "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$workdir" -p "$pg_port" -U "$user" -d "$db" "$@"; }
sql_password="${password//\'/\'\'}"
psql_as postgres postgres -c "CREATE ROLE demo LOGIN PASSWORD '$sql_password'" -c "CREATE DATABASE shop OWNER demo" \
	-c "CREATE ROLE pgproxy_analysis LOGIN PASSWORD '$sql_password'" -c "GRANT pg_read_all_data TO pgproxy_analysis" \
	-c "CREATE ROLE pgproxy_reporter LOGIN PASSWORD '$sql_password'" -c "CREATE DATABASE pgproxy_reports OWNER pgproxy_reporter" \
	-c "CREATE ROLE auditor LOGIN PASSWORD '$sql_password'" -c "GRANT pg_read_all_data TO auditor"
if [ -e "$pg_share/extension/hypopg.control" ]; then
	psql_as postgres shop -c "CREATE EXTENSION hypopg"
else
	log "hypopg is not installed (apt-get install postgresql-15-hypopg): suggested indexes are not checked"
fi
log "loading sample data into shop (customers, orders, 2,000,000 page_views: a few seconds)"
psql_as demo shop <"$root/hack/demo-data.sql"

direct="postgres://demo:$password@127.0.0.1:$pg_port/shop?sslmode=disable"
if [ "${DEMO_NO_PROXY:-}" = 1 ]; then
	printf '\nDatabase only (DEMO_NO_PROXY=1):\n  psql "%s"\n\nCtrl-C to stop.\n' "$direct"
	sleep infinity &
	proxy_pid=$!
	wait "$proxy_pid"
	exit 0
fi

log "building pgproxy"
(cd "$root" && go build -o "$workdir/pgproxy" ./cmd/pgproxy) ||
	die "cmd/pgproxy does not build; DEMO_NO_PROXY=1 runs the database alone"

# Clients log in with their own user and password (passthrough); the user of PG_BACKEND_URL is
# the proxy's own account for the analysis.
urlencode() {
	local LC_ALL=C # byte by byte: a non-ASCII character is its UTF-8 bytes
	local s="$1" out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c="${s:i:1}"
		case "$c" in [A-Za-z0-9._~-]) out+="$c" ;; *) out+="$(printf '%%%02X' "'$c")" ;; esac
	done
	printf '%s' "$out"
}
enc_password="$(urlencode "$password")"
export LISTEN_ADDR="$listen" HEALTH_CHECK_ADDR="$health"
export PG_BACKEND_URL="postgres://pgproxy_analysis:$enc_password@127.0.0.1:$pg_port/shop?sslmode=disable"
export ANALYSIS_ENABLED="${ANALYSIS_ENABLED:-true}" PROXY_MODE="${PROXY_MODE:-blocking}"
export MASKING_ENABLED="${MASKING_ENABLED:-true}" MASKING_CONFIG_PATH="${MASKING_CONFIG_PATH:-$root/hack/demo-masking.yaml}"
export MASKING_HMAC_KEY="${MASKING_HMAC_KEY:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
export REPORTER_DB_URL="${REPORTER_DB_URL:-postgres://pgproxy_reporter:$enc_password@127.0.0.1:$pg_port/pgproxy_reports?sslmode=disable}"
"$workdir/pgproxy" &
proxy_pid=$!
hh="$(host_of "$health")" hp="$(port_of "$health")"
for _ in $(seq 150); do
	http_ok "$hh" "$hp" /health && break
	kill -0 "$proxy_pid" 2>/dev/null || die "pgproxy exited during start-up"
	sleep 0.1
done
http_ok "$hh" "$hp" /health || die "pgproxy /health did not answer 200 within 15 s"

cat <<MSG

pgproxy is listening on $listen in front of PostgreSQL 127.0.0.1:$pg_port (database shop).
Through the proxy:
  psql "postgres://demo:$password@$(host_of "$listen"):$(port_of "$listen")/shop?sslmode=disable"
Direct, bypassing the proxy:
  psql "$direct"
Masking (MASKING_CONFIG_PATH=$MASKING_CONFIG_PATH): names, emails, phones and national IDs
of customers come out masked, however the statement is written:
  SELECT full_name, email, phone, national_id FROM customers ORDER BY id LIMIT 3;
  SELECT count(*) FROM customers WHERE email LIKE 'a%';   -- compares masked values
  SELECT row_to_json(c) FROM customers c LIMIT 1;
the auditor login (unmasked_roles) sees clear values:
  psql "postgres://auditor:$password@$(host_of "$listen"):$(port_of "$listen")/shop?sslmode=disable"
Guardrails (PROXY_MODE=$PROXY_MODE): this reads all 2,000,000 page_views and is blocked (54000):
  SELECT count(*) FROM page_views WHERE path = '/checkout';
this one uses an index and runs:
  SELECT path, viewed_at FROM page_views WHERE customer_id = 42 ORDER BY viewed_at DESC LIMIT 5;
Why, before running it: PG_BACKEND_URL='$PG_BACKEND_URL' $workdir/pgproxy analyze "SELECT ..."
What the reporter wrote:
  psql "postgres://pgproxy_reporter:$enc_password@127.0.0.1:$pg_port/pgproxy_reports?sslmode=disable" \\
    -c 'TABLE pgproxy.query_issues' -c 'TABLE pgproxy.query_metrics'
Health: http://$hh:$hp/health  /ready  /metrics

Ctrl-C stops the proxy and the database and removes $workdir.
MSG
wait "$proxy_pid"
