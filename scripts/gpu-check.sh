#!/usr/bin/env bash
# On a GPU machine, in one call (the device tool: carry .gpu-bundle.tar.xz): the GPU tests under compute-sanitizer memcheck, then the GPU
# benchmark (bench/gpu.sh), from the bundle scripts/gpu-bundle.sh made on the build machine.
# Results (test logs, the benchmark's output, JSON and chart) go to $OUT (the device tool's
# folder that comes back) or ./gpu-check-out, and the benchmark folder is named
# gpu-<device>-<date>-<commit> to be committed under bench/results/.
#
#   scripts/gpu-check.sh [bench/gpu.sh flags]
set -uo pipefail
cd "$(dirname "$0")/.."
bundle="$PWD/.gpu-bundle"
out="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$out"
if [ ! -x "$bundle/bin/vlake" ] && [ -f "$bundle.tar.xz" ]; then
  tar -xJf "$bundle.tar.xz"
fi
[ -x "$bundle/bin/vlake" ] || { echo "no bundle: run scripts/gpu-bundle.sh first" >&2; exit 2; }
# cuBLAS comes from the machine's CUDA toolkit.
export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export UCX_MODULE_DIR="$bundle/lib/ucx"
export VLAKE_BIN="$bundle/bin/vlake"
summary="$out/summary.txt"
: >"$summary"
"$VLAKE_BIN" gpu info 2>&1 | tee -a "$summary"
if ! "$VLAKE_BIN" gpu info >/dev/null 2>&1; then
  echo "no usable GPU here: nothing to check" | tee -a "$summary"
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$summary"
status=0
sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
for t in "$bundle"/bin/*_test; do
  name="$(basename "$t")"
  if [ -n "$sanitizer" ]; then
    "$sanitizer" --tool memcheck --error-exitcode 97 --print-limit 20 "$t" --gtest_brief=1 \
      >"$out/$name.memcheck.txt" 2>&1
  else
    "$t" --gtest_brief=1 >"$out/$name.txt" 2>&1
  fi
  rc=$?
  echo "$name: exit $rc${sanitizer:+ (under compute-sanitizer memcheck)}" | tee -a "$summary"
  [ "$rc" -eq 0 ] || status=1
done
export VLAKE_BENCH_OUT="$out/bench"
VLAKE_COMMIT="$(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)"
export VLAKE_COMMIT
if bench/gpu.sh "$@" >"$out/bench.log" 2>&1; then
  echo "bench: ok ($(tail -1 "$out/bench.log"))" | tee -a "$summary"
else
  echo "bench: failed (see bench.log)" | tee -a "$summary"
  status=1
fi
exit "$status"
