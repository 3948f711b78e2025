# Shared by the bench scripts (source it): finds the binary and starts a throwaway storage node
# on a free loopback port, killed with its data when the script exits.
#   start_storage_node            sets $bin, $work, $server_pid, $port
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
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

# No fsync: the benches measure data paths and builds, not the disk.
start_storage_node() {
  "$bin" storage --listen 127.0.0.1:0 --data "$work/data" --no-fsync >"$work/out" 2>"$work/log" &
  server_pid=$!
  port=""
  for _ in $(seq 100); do
    port="$(sed -n 's/.*endpoint: *http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/out" | head -1)"
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$work/log" >&2; exit 1; }
}
