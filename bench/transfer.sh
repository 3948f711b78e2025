#!/usr/bin/env bash
# HTTP body vs the direct data path (UCX shared memory, UCX tcp) on loopback, in one run:
# starts a storage node (no fsync: the data path is measured, not the disk), runs
# `vlake bench transfer` against it with the server's CPU measured from /proc, and appends the
# final JSON line to bench/results/transfer-<date>.jsonl.
#
#   bench/transfer.sh [--sizes 1M,16M,256M,1G] [--streams 1,4] [--min-seconds 1.5]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${VLAKE_BIN:-$root/build/apps/vlake/vlake}"
[ -x "$bin" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export VLAKE_ACCESS_KEY=benchtransfer VLAKE_SECRET_KEY=benchtransfersecret
"$bin" serve --listen 127.0.0.1:0 --data "$work/data" --no-fsync >"$work/out" 2>"$work/log" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port="$(sed -n 's/.*endpoint: *http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/out" | head -1)"
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/log" >&2; exit 1; }

out="$work/bench.txt"
"$bin" bench transfer --endpoint "http://127.0.0.1:$port" --server-pid "$server_pid" "$@" | tee "$out"
mkdir -p "$here/results"
tail -1 "$out" >>"$here/results/transfer-$(date +%F).jsonl"
