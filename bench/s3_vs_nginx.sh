#!/usr/bin/env bash
# vlake vs nginx on loopback, same bytes on the same disk, same load generator (vlake bench s3).
# Prints progress on stderr and, as its last stdout line, one JSON object with the figures
# docs/benchmarks.md records. Usage: bench/s3_vs_nginx.sh [DURATION_SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
VLAKE=${VLAKE_BIN:-build/apps/vlake/vlake}
[[ -x $VLAKE ]] || { echo "build first: scripts/build.sh" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing: scripts/install-deps.sh --test" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/vlake-bench-XXXXXX")
chmod 755 "$W"  # nginx workers run unprivileged and must traverse it
VPID="" NPID=""
cleanup() {
  [[ -n $VPID ]] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null || true
  [[ -n $NPID ]] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export VLAKE_ACCESS_KEY=BENCHACCESSKEY000001 VLAKE_SECRET_KEY=bench-secret-$RANDOM$RANDOM$RANDOM
"$VLAKE" serve --listen 127.0.0.1:0 --data "$W/vlake-data" --log-level warn >"$W/vlake.out" 2>"$W/vlake.err" &
VPID=$!
for _ in $(seq 100); do grep -q endpoint: "$W/vlake.out" 2>/dev/null && break; sleep 0.1; done
VPORT=$(sed -n 's/.*endpoint: *http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$W/vlake.out")
[[ -n $VPORT ]] || { cat "$W/vlake.err" >&2; exit 1; }

NPORT=$(free_port)
mkdir -p "$W/nginx-root" "$W/nginx-tmp"
cat >"$W/nginx.conf" <<NGINX
worker_processes auto;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path $W/nginx-tmp/body;
  proxy_temp_path $W/nginx-tmp/proxy;
  fastcgi_temp_path $W/nginx-tmp/fastcgi;
  uwsgi_temp_path $W/nginx-tmp/uwsgi;
  scgi_temp_path $W/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$NPORT;
    root $W/nginx-root;
    location / { }
  }
}
NGINX
nginx -c "$W/nginx.conf" -p "$W" &
NPID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$NPORT) 2>/dev/null && break; sleep 0.1; done

bench() { "$VLAKE" bench s3 "$@"; }
V=(--endpoint "http://127.0.0.1:$VPORT")
N=(--endpoint "http://127.0.0.1:$NPORT" --no-sign)

echo "== MD5 ceiling (one core, OpenSSL, the library vlake uses)" >&2
MD5=$(python3 - <<'PY'
import hashlib, os, time
buf = os.urandom(64 << 20)
best = 0.0
for _ in range(3):
    t = time.perf_counter(); h = hashlib.md5()
    for _ in range(4): h.update(buf)
    best = max(best, 4 * len(buf) / (time.perf_counter() - t) / 1e9)
print(f"{best:.4f}")
PY
)
echo "md5 ceiling: $MD5 GB/s" >&2

echo "== seeding objects (64 MiB x 8, 4 KiB x 64) in vlake and as files for nginx" >&2
bench "${V[@]}" --bucket large --op put --size 64M --objects 8 --concurrency 4 --once >/dev/null
bench "${V[@]}" --bucket small --op put --size 4K --objects 64 --concurrency 16 --once >/dev/null
bench --op fill-dir --dir "$W/nginx-root" --bucket large --size 64M --objects 8 --concurrency 4
bench --op fill-dir --dir "$W/nginx-root" --bucket small --size 4K --objects 64 --concurrency 16
chmod -R a+rX "$W/nginx-root"

run() {  # label, args... -> prints the JSON line on stderr, echoes it
  local label=$1; shift
  local out
  out=$(bench "$@" --duration "$DURATION")
  echo "$label: $out" >&2
  echo "$out"
}
jget() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "== large GET, 64 MiB objects, 4 concurrent" >&2
VG=$(run "vlake get large" "${V[@]}" --bucket large --op get --size 64M --objects 8 --concurrency 4 --server-pid $VPID)
NG=$(run "nginx get large" "${N[@]}" --bucket large --op get --size 64M --objects 8 --concurrency 4)
echo "== small GET, 4 KiB objects, 16 concurrent" >&2
VS=$(run "vlake get small" "${V[@]}" --bucket small --op get --size 4K --objects 64 --concurrency 16 --server-pid $VPID)
NS=$(run "nginx get small" "${N[@]}" --bucket small --op get --size 4K --objects 64 --concurrency 16)
echo "== large PUT, 64 MiB objects, one stream (fsync on: acknowledged = durable)" >&2
VP=$(run "vlake put large" "${V[@]}" --bucket putbench --op put --size 64M --objects 4 --concurrency 1 --server-pid $VPID)

python3 - "$MD5" "$VG" "$NG" "$VS" "$NS" "$VP" <<'PY'
import json, sys
md5 = float(sys.argv[1])
vg, ng, vs, ns, vp = (json.loads(a) for a in sys.argv[2:])
out = {
    "get_large_gbps": round(vg["gbps"], 4),
    "nginx_get_large_gbps": round(ng["gbps"], 4),
    "get_large_ratio": round(vg["gbps"] / ng["gbps"], 3),
    "get_small_ops": round(vs["ops_per_s"], 1),
    "nginx_get_small_ops": round(ns["ops_per_s"], 1),
    "get_small_ratio": round(vs["ops_per_s"] / ns["ops_per_s"], 3),
    "get_small_p99_ms": vs["p99_ms"], "nginx_get_small_p99_ms": ns["p99_ms"],
    "put_large_gbps": round(vp["gbps"], 4),
    "md5_ceiling_gbps": md5,
    "put_large_ratio_to_md5": round(vp["gbps"] / md5, 3),
    "put_large_p50_ms": vp["p50_ms"],
    "server_cpu_s_get_small": vs["server_cpu_s"], "client_cpu_s_get_small": vs["client_cpu_s"],
    "errors": vg["errors"] + ng["errors"] + vs["errors"] + ns["errors"] + vp["errors"],
}
print(json.dumps(out))
PY
