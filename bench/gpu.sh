#!/usr/bin/env bash
# The GPU headline benchmark in one run (docs/benchmarks.md#gpu): starts a storage node on this
# machine (no fsync: builds are measured, not the disk), runs `vlake bench gpu --s3` against it,
# and writes the output, the final JSON line and a chart (SVG) into
# bench/results/gpu-<device>-<date>-<commit>/ (under $VLAKE_BENCH_OUT instead when set; the
# commit from $VLAKE_COMMIT when there is no git checkout, as on the device machine).
#
#   bench/gpu.sh [--ivfpq-rows 1000000 --ivfpq-dim 768 --hnsw-rows 1000000 --hnsw-dim 96 ...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export VLAKE_ACCESS_KEY=benchgpu VLAKE_SECRET_KEY=benchgpusecret012345
start_storage_node

out="$work/bench.txt"
"$bin" bench gpu --s3 "http://127.0.0.1:$port" "$@" | tee "$out"
json="$(tail -1 "$out")"
device="$(python3 -c 'import json,sys,re; print(re.sub(r"[^A-Za-z0-9]+","-",json.loads(sys.argv[1])["device"]).strip("-").lower())' "$json")"
commit="${VLAKE_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
dest="${VLAKE_BENCH_OUT:-$here/results}/gpu-$device-$(date +%F)-$commit"
mkdir -p "$dest"
cp "$out" "$dest/bench.txt"
printf '%s\n' "$json" >"$dest/result.json"
python3 "$here/gpu_chart.py" "$dest/result.json" "$dest/chart.svg"
echo "results: $dest"
