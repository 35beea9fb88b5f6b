#!/bin/sh
# Regenerates the top-level vmlinux.h from the running kernel's BTF.
# Usage: hack/vmlinux.sh [BTF_FILE]   (default /sys/kernel/btf/vmlinux)
set -eu
btf="${1:-/sys/kernel/btf/vmlinux}"
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -r "$btf" ]; then
	echo "vmlinux.sh: no kernel BTF at $btf (CONFIG_DEBUG_INFO_BTF)" >&2
	exit 1
fi
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
bpftool btf dump file "$btf" format c >"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$root/vmlinux.h"
trap - EXIT
echo "wrote $root/vmlinux.h from $btf"
