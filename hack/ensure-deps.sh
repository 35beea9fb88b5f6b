#!/usr/bin/env bash
# Makes sure the programs the tests need are present. As root it installs what is missing
# (apt-get, npm ci in tests/node), mounts bpffs on /sys/fs/bpf and makes a cgroup2 mount
# findable; as another user it only reports, and exits 1 when something required is missing.
# Idempotent; does nothing slow when everything is already there.
# Environment: PG_BIN_DIR (default /usr/lib/postgresql/15/bin), PG_SHARE_DIR (default
# /usr/share/postgresql/15: where extensions' control files are).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pg_bin="${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"
pg_share="${PG_SHARE_DIR:-/usr/share/postgresql/15}"
is_root=false
[ "$(id -u)" = 0 ] && is_root=true

# check|apt package|required without root (yes/no: eBPF tooling is only usable as root)
deps=(
	"$pg_bin/initdb|postgresql-15|yes"
	"$pg_bin/pgbench|postgresql-15|yes"
	"$pg_share/extension/hypopg.control|postgresql-15-hypopg|yes"
	"psql|postgresql-client-15|yes"
	"redis-server|redis-server|yes"
	"pgbouncer|pgbouncer|yes"
	"node|nodejs|yes"
	"npm|nodejs|yes"
	"clang|clang|no"
	"llvm-strip|llvm|no"
	"bpftool|bpftool|no"
	"/usr/include/bpf/bpf_helpers.h|libbpf-dev|no"
	"iptables|iptables|no"
	"ip|iproute2|no"
)

have() {
	case "$1" in
	/*) [ -e "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
	esac
}

# missing_deps prints "check|package|required" for each dependency not present.
missing_deps() {
	local d
	for d in "${deps[@]}"; do
		have "${d%%|*}" || echo "$d"
	done
}

apt_updated=false
apt_install() {
	if ! $apt_updated; then
		echo "ensure-deps: apt-get update"
		apt-get update -qq
		apt_updated=true
	fi
	echo "ensure-deps: apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

status=0
if ! command -v go >/dev/null 2>&1; then
	echo "ensure-deps: go is not on PATH (install Go $(awk '/^go /{print $2}' "$root/go.mod"))" >&2
	status=1
fi

mapfile -t missing < <(missing_deps)
if [ "${#missing[@]}" -gt 0 ]; then
	if $is_root; then
		if ! have "$pg_bin/initdb"; then
			# Do not let the package create and start a cluster on port 5432.
			mkdir -p /etc/postgresql-common/createcluster.d
			echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/pgproxy.conf
		fi
		mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | cut -d'|' -f2 | sort -u)
		apt_install "${pkgs[@]}"
		# Debian's own nodejs ships npm separately.
		have npm || apt_install npm
		mapfile -t missing < <(missing_deps)
	fi
	for d in "${missing[@]}"; do
		IFS='|' read -r what pkg required <<<"$d"
		if $is_root || [ "$required" = yes ]; then
			echo "ensure-deps: missing $what (Debian package $pkg)" >&2
			status=1
		else
			echo "ensure-deps: missing $what (package $pkg; only eBPF/transparent-mode tests need it)" >&2
		fi
	done
fi

# node-postgres for tests/node, reinstalled when package-lock.json changed.
node_dir="$root/tests/node"
if have npm && { [ ! -d "$node_dir/node_modules/pg" ] ||
	[ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; }; then
	echo "ensure-deps: npm ci in tests/node"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Kernel interfaces for the eBPF tests.
fstypes() { awk '{for (i = 1; i <= NF; i++) if ($i == "-") { print $(i + 1); break }}' /proc/self/mountinfo; }
if ! fstypes | grep -qx bpf; then
	if $is_root; then
		echo "ensure-deps: mounting bpffs on /sys/fs/bpf"
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf || echo "ensure-deps: cannot mount bpffs" >&2
	else
		echo "ensure-deps: bpffs not mounted (eBPF tests need root)" >&2
	fi
fi
if ! fstypes | grep -qx cgroup2; then
	if $is_root; then
		dir=/sys/fs/cgroup/unified
		mkdir -p "$dir" 2>/dev/null || dir=/run/pgproxy-cgroup2
		mkdir -p "$dir"
		echo "ensure-deps: mounting cgroup2 on $dir"
		mount -t cgroup2 none "$dir" || echo "ensure-deps: cannot mount cgroup2" >&2
	else
		echo "ensure-deps: no cgroup2 mount (eBPF tests need one)" >&2
	fi
fi

if [ "$status" = 0 ]; then
	echo "ensure-deps: all test dependencies present"
fi
exit "$status"
