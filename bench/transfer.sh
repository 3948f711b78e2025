#!/usr/bin/env bash
# HTTP body vs the direct data path (UCX shared memory, UCX tcp) on loopback, in one run:
# starts a storage node (no fsync: the data path is measured, not the disk), runs
# `vlake bench transfer` against it with the server's CPU measured from /proc, and appends the
# final JSON line to bench/results/transfer-<date>.jsonl.
#
#   bench/transfer.sh [--sizes 1M,16M,256M,1G] [--streams 1,4] [--min-seconds 1.5]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export VLAKE_ACCESS_KEY=benchtransfer VLAKE_SECRET_KEY=benchtransfersecret
start_storage_node

out="$work/bench.txt"
"$bin" bench transfer --endpoint "http://127.0.0.1:$port" --server-pid "$server_pid" "$@" | tee "$out"
mkdir -p "$here/results"
tail -1 "$out" >>"$here/results/transfer-$(date +%F).jsonl"
