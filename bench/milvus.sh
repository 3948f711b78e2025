#!/usr/bin/env bash
# The Milvus API over the wire vs the same engine in-process, in one run: starts `vlake serve`
# (no fsync: the API and the engine are measured, not the disk), runs `vlake bench milvus`
# against its vector port (vlake's own C++ gRPC client, and the Node SDK through
# bench/milvus_sdk_bench.mjs) and against an engine in the bench process over the same
# storage node, and appends the final JSON line to bench/results/milvus-<date>.jsonl.
#
#   bench/milvus.sh [--rows 1000000] [--types HNSW,IVF_FLAT] [--clients 16] [--batch 100]
#                   [--seconds 10] ...        (vlake bench milvus --help lists them all)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export VLAKE_ACCESS_KEY=benchmilvus VLAKE_SECRET_KEY=benchmilvussecret0123456789
cat >"$work/users.json" <<JSON
{"users": [{"access_key": "$VLAKE_ACCESS_KEY", "secret_key": "$VLAKE_SECRET_KEY", "user_id": "bench"}]}
JSON
"$bin" serve --listen 127.0.0.1:0 --vector-listen 127.0.0.1:0 --data "$work/data" --no-fsync \
  --users "$work/users.json" >"$work/out" 2>"$work/log" &
server_pid=$!
s3="" vec=""
for _ in $(seq 200); do
  s3="$(sed -n 's/.*endpoint: *\(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/out" | head -1)"
  vec="$(sed -n 's/.*vector db: *http:\/\/\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/out" | head -1)"
  [ -n "$s3" ] && [ -n "$vec" ] && break
  sleep 0.1
done
[ -n "$s3" ] && [ -n "$vec" ] || { cat "$work/log" >&2; exit 1; }

sdk=()
if command -v node >/dev/null && [ -d "$root/tests/integration/milvus/node_modules/@zilliz/milvus2-sdk-node" ]; then
  sdk=(--sdk-cmd "node $here/milvus_sdk_bench.mjs")
else
  echo "milvus.sh: the Node SDK is not installed (scripts/install-deps.sh --test): C++ client only" >&2
fi
echo "cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1) x $(nproc)"
out="$work/bench.txt"
"$bin" bench milvus --address "$vec" --s3 "$s3" --server-pid "$server_pid" "${sdk[@]}" "$@" | tee "$out"
mkdir -p "$here/results"
tail -1 "$out" | python3 -c 'import json,sys,subprocess
r=json.loads(sys.stdin.read())
r["cpu"]=open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
print(json.dumps(r))' >>"$here/results/milvus-$(date +%F).jsonl"
