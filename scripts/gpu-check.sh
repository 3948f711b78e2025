#!/usr/bin/env bash
# On a GPU machine, in one device call (carry .gpu-bundle.tar.xz, made here by
# scripts/gpu-bundle.sh): the GPU checks of issue 12 in two modes, each well inside the device
# tool's 10-minute command limit.
#
#   scripts/gpu-check.sh [quick|full] [bench/gpu.sh flags]      (default quick)
#
#   quick (the diagnostic run, aim < 6 min, at most ~9): vlake gpu info + nvidia-smi; every test
#         binary of the bundle without a sanitizer (gtest XML + text log); compute-sanitizer
#         memcheck, racecheck, synccheck on one test per kernel family ($sanitizer_filter);
#         the benchmark at 200k rows.
#   full  (at most ~9.5 min): gpu info + nvidia-smi; the test binaries again (no sanitizer;
#         VLAKE_GPU_CHECK_TEST_FILTER narrows them to what failed); the benchmark at its
#         defaults (1M x 768 IVF_PQ, 1M x 96 CAGRA/HNSW).
#
# Every step runs under its own `timeout`, writes its own file under $OUT (the device tool's
# folder that comes back) or ./gpu-check-out at once, and appends one line to summary.txt with
# its verdict and elapsed seconds, so a run cut short still returns every step that finished.
# The steps' limits are capped by one deadline (VLAKE_GPU_CHECK_DEADLINE_S; 540 s quick, 570 s
# full) so the whole run ends before the device tool's limit; VLAKE_GPU_CHECK_LIMITS="bench=400"
# changes one step's limit. The benchmark's result folder
# (gpu-<device>-<date>-<commit>) lands under $OUT/bench, to be committed under bench/results/.
# Exit: 0 all passed, 1 something failed or timed out, 2 no bundle or no usable GPU.
# VLAKE_GPU_CHECK_DRY_RUN=1 prints the steps with their limits and runs nothing (no GPU or
# bundle needed): a check of this script's control flow.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

mode=quick
case "${1:-}" in
  quick | full) mode="$1"; shift ;;
  -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "" | --*) ;;
  *) echo "usage: scripts/gpu-check.sh [quick|full] [bench/gpu.sh flags]" >&2; exit 2 ;;
esac
dry_run="${VLAKE_GPU_CHECK_DRY_RUN:-0}"

# Limits in seconds (sum: quick 530, full 555; the deadline caps them anyway); `limits` below
# names the mode's table.
# shellcheck disable=SC2034
declare -A limit_quick=([info]=20 [nvidia-smi]=15 [gpu_rules_test]=30 [gpu_test]=120
  [memcheck]=75 [racecheck]=75 [synccheck]=45 [bench]=150)
# shellcheck disable=SC2034
declare -A limit_full=([info]=20 [nvidia-smi]=15 [gpu_rules_test]=30 [gpu_test]=120 [bench]=370)
default_test_limit=60  # a test binary not named above
# VLAKE_GPU_CHECK_LIMITS="bench=400 gpu_test=60" overrides entries of the mode's table.
declare -n limits="limit_$mode"
for kv in ${VLAKE_GPU_CHECK_LIMITS:-}; do
  [[ "$kv" =~ ^[A-Za-z_-]+=[0-9]+$ ]] || { echo "bad VLAKE_GPU_CHECK_LIMITS entry: $kv" >&2; exit 2; }
  limits[${kv%%=*}]="${kv#*=}"
done
deadline="${VLAKE_GPU_CHECK_DEADLINE_S:-$([ "$mode" = quick ] && echo 540 || echo 570)}"

# The compute-sanitizer subset: the cheapest test of each kernel family in gpu_test
# (src/gpu/device_test.cc, algorithms_test.cc, cagra_test.cc). Edit here.
#   top-k (k > rows: padded slots)           Metrics/BruteForce.FewerRowsThanKPadsWithEmptySlots/L2
#   brute force (device inputs, streamed base, flat index search, k 100)
#                                            Metrics/BruteForce.DeviceInputsStreamingAndUploadFlatAgree/L2
#   k-means (fit + predict)                  KMeans.PredictIsTheExactNearestCentroid
#   IVF_FLAT (build + GPU search)            Cases/IvfBuild.RecallMatchesFaissAndGpuSearchMatchesCpu/L2_FLAT
#   IVF_PQ (build + GPU search + refine)     Cases/IvfBuild.RecallMatchesFaissAndGpuSearchMatchesCpu/L2_PQ
#   CAGRA build (graph optimize, 3000 rows)  CagraGpuTest.OptimizeEqualsCpuReferenceOnRandomKnn
#   CAGRA search (exact-kNN build + search)  CagraGpuTest.ExactKnnBuildAndSearchRecall
#   device memory / CRC32C, device query     GpuDeviceMemory.*, GpuDevice.ListsDevicesOrSaysWhyNot
sanitizer_filter='Metrics/BruteForce.FewerRowsThanKPadsWithEmptySlots/L2'
sanitizer_filter+=':Metrics/BruteForce.DeviceInputsStreamingAndUploadFlatAgree/L2'
sanitizer_filter+=':KMeans.PredictIsTheExactNearestCentroid'
sanitizer_filter+=':Cases/IvfBuild.RecallMatchesFaissAndGpuSearchMatchesCpu/L2_FLAT'
sanitizer_filter+=':Cases/IvfBuild.RecallMatchesFaissAndGpuSearchMatchesCpu/L2_PQ'
sanitizer_filter+=':CagraGpuTest.OptimizeEqualsCpuReferenceOnRandomKnn'
sanitizer_filter+=':CagraGpuTest.ExactKnnBuildAndSearchRecall'
sanitizer_filter+=':GpuDeviceMemory.*:GpuDevice.ListsDevicesOrSaysWhyNot'
test_filter="${VLAKE_GPU_CHECK_TEST_FILTER:-*}"
# The quick benchmark: both workloads at 200k rows, 500 queries (flags given after the mode
# come later and win).
quick_bench=(--ivfpq-rows 200000 --hnsw-rows 200000 --queries 500)

bundle="$PWD/.gpu-bundle"
out="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$out/tests"
summary="$out/summary.txt"
: >"$summary"
t_start=$SECONDS
status=0
note() { echo "$*" | tee -a "$summary"; }

if [ "$dry_run" != 1 ]; then
  if [ -f "$bundle.tar.xz" ]; then
    # Always from the archive: a warm device machine keeps the last call's ignored files, and
    # a folder left by the previous run would be the old build. The image may lack xz(1);
    # Python's tarfile reads xz too.
    rm -rf "$bundle"
    tar -xJf "$bundle.tar.xz" 2>/dev/null ||
      python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(".", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' \
        "$bundle.tar.xz"
  fi
  [ -x "$bundle/bin/vlake" ] || { note "no bundle: run scripts/gpu-bundle.sh first"; exit 2; }
fi
tests=()
for t in "$bundle"/bin/*_test; do [ -x "$t" ] && tests+=("$t"); done
[ "$dry_run" = 1 ] && [ ${#tests[@]} -eq 0 ] && tests=("$bundle/bin/gpu_rules_test" "$bundle/bin/gpu_test")

# cuBLAS and the sanitizer come from the machine's CUDA toolkit (or its Python's nvidia-cublas).
cuda_libs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
  "$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)"; do
  if [ -n "$d" ] && compgen -G "$d/libcublas.so.*" >/dev/null; then cuda_libs="$d"; break; fi
done
export LD_LIBRARY_PATH="$bundle/lib${cuda_libs:+:$cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export UCX_MODULE_DIR="$bundle/lib/ucx"
export VLAKE_BIN="$bundle/bin/vlake"
sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
smi="$(command -v nvidia-smi || ls /usr/local/nvidia/bin/nvidia-smi 2>/dev/null)"

commit="$(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)"
note "# gpu-check $mode, bundle $commit, $(date -u +%FT%TZ), kernel $(uname -r), $(nproc) cores," \
  "deadline ${deadline}s, cuBLAS from ${cuda_libs:-nowhere}, sanitizer ${sanitizer:-none}"

# run_step NAME LOG CMD...: CMD under `timeout`, stdout+stderr to $out/LOG, one summary line.
# The limit is limits[NAME], cut to what the deadline leaves. Sets $rc.
run_step() {
  local name="$1" log="$2"
  shift 2
  local limit="${limits[$name]:-$default_test_limit}"
  local left=$((deadline - (SECONDS - t_start) - 10))  # 10 s for what follows a kill
  ((left < limit)) && limit=$left
  if ((limit < 5)); then
    rc=124
    printf '%-16s %-16s %5s  (under 5 s left for it before the deadline)\n' "$name" "NOT RUN" \
      "-" | tee -a "$summary"
    status=1
    return
  fi
  if [ "$dry_run" = 1 ]; then
    rc=0
    printf '%-16s %-16s limit %4ds  -> %s: %s\n' "$name" "dry run" "$limit" "$log" "$*" |
      tee -a "$summary"
    return
  fi
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" >"$out/$log" 2>&1
  rc=$?
  local verdict
  case "$rc" in
    0) verdict=ok ;;
    124 | 137) verdict=TIMEOUT ;;
    77) verdict="SKIPPED (77)" ;;  # tests that skip on a GPU machine did not run: not a pass
    97) verdict="SANITIZER ERRORS" ;;
    *) verdict="FAILED" ;;
  esac
  [ "$rc" -eq 0 ] || status=1
  printf '%-16s %-16s %4ds of %4ds  -> %s\n' "$name" "$verdict" $((SECONDS - t0)) "$limit" \
    "$log" | tee -a "$summary"
}

# The names of the tests a gtest log says failed, on one summary line.
note_failed() {
  local failed
  failed="$(sed -n 's/^\[  FAILED  \] \([A-Za-z][^ ,]*\).*/\1/p' "$1" 2>/dev/null | sort -u | head -20 | tr '\n' ' ')"
  [ -n "$failed" ] && note "  failed: $failed"
}

# 1. The device.
run_step info info.txt "$VLAKE_BIN" gpu info
if [ "$dry_run" != 1 ] && [ "$rc" -ne 0 ]; then
  note "no usable GPU here: nothing to check ($(tail -1 "$out/info.txt"))"
  exit 2
fi
if [ -n "$smi" ] || [ "$dry_run" = 1 ]; then
  query=name,driver_version,memory.total,clocks.max.sm,power.limit
  # shellcheck disable=SC2016  # $0 and $1 are the inner shell's
  run_step nvidia-smi nvidia-smi.txt sh -c '"$0" && "$0" --format=csv --query-gpu="$1"' \
    "${smi:-nvidia-smi}" "$query"
fi
if [ "$dry_run" != 1 ]; then
  missing="$(ldd "$VLAKE_BIN" "${tests[@]}" 2>&1 | grep 'not found' | sort -u | tr -s ' \t\n' ' ')"
  [ -n "$missing" ] && note "libraries not found: $missing"
fi

# 2. Every test binary, no sanitizer.
for t in "${tests[@]}"; do
  name="$(basename "$t")"
  run_step "$name" "tests/$name.txt" "$t" --gtest_filter="$test_filter" \
    --gtest_output="xml:$out/tests/$name.xml"
  [ "$rc" -ne 0 ] && note_failed "$out/tests/$name.txt"
done

# 3. The sanitizer subset (quick only). A runtime that refuses the sanitizer (gVisor: "Device
# not supported") fails the first tool at once; the others are then skipped.
if [ "$mode" = quick ]; then
  gpu_test="$bundle/bin/gpu_test"
  if [ -z "$sanitizer" ] && [ "$dry_run" != 1 ]; then
    note "compute-sanitizer not found: sanitizer steps skipped"
    status=1
  elif [ ! -x "$gpu_test" ] && [ "$dry_run" != 1 ]; then
    note "no gpu_test in the bundle (built without CUDA?): sanitizer steps skipped"
    status=1
  else
    for tool in memcheck racecheck synccheck; do
      run_step "$tool" "$tool.txt" "${sanitizer:-compute-sanitizer}" --tool "$tool" \
        --error-exitcode 97 --print-limit 20 "$gpu_test" --gtest_filter="$sanitizer_filter" \
        --gtest_output="xml:$out/tests/gpu_test.$tool.xml"
      [ "$rc" -ne 0 ] && note_failed "$out/$tool.txt"
      if [ "$dry_run" != 1 ] && grep -q "Device not supported" "$out/$tool.txt"; then
        note "compute-sanitizer does not support this device or runtime: the other tools skipped"
        break
      fi
    done
  fi
fi

# 4. The benchmark.
export VLAKE_BENCH_OUT="$out/bench" VLAKE_COMMIT="$commit"
bench_flags=()
[ "$mode" = quick ] && bench_flags=("${quick_bench[@]}")
run_step bench bench.log bench/gpu.sh "${bench_flags[@]}" "$@"
if [ "$dry_run" != 1 ]; then
  json="$(grep '^{' "$out/bench.log" | tail -1)"
  if [ -n "$json" ]; then
    printf '%s\n' "$json" >"$out/bench.json"
    note "bench: $(python3 -c 'import json, sys
r = json.loads(sys.argv[1])
keys = ("device", "ivfpq_cpu_http_s", "ivfpq_gpu_direct_s", "ivfpq_gpu_direct_cold_s",
        "hnsw_cpu_http_s", "cagra_gpu_direct_s", "cagra_gpu_direct_cold_s", "speedup_ivfpq",
        "speedup_cagra_vs_hnsw", "recall_ivfpq_cpu", "recall_ivfpq_gpu", "recall_hnsw",
        "recall_cagra", "kmeans_fraction_of_gemm", "gpu_get_fraction_of_h2d",
        "gpu_get_aggregate_gbps")
print(" ".join(k + "=" + (f"{r[k]:.3g}" if isinstance(r.get(k), float) else str(r.get(k)))
               for k in keys))' "$json" 2>&1)"
  elif [ -s "$out/bench.log" ]; then
    note "bench: no JSON line; last: $(tail -1 "$out/bench.log" | cut -c1-300)"
  fi
fi

note "total $((SECONDS - t_start))s, $([ "$status" -eq 0 ] && echo "all passed" || echo "something FAILED")"
exit "$status"
