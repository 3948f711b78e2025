#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 into ./build-fuzz and runs them for a bounded time.
#   scripts/fuzz.sh build                 configure + build every fuzzer
#   scripts/fuzz.sh run NAME SECONDS      run one fuzzer (seed corpus in fuzz/corpus/NAME)
# ctest calls both (label fuzz); a crash, leak or sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  build)
    if [[ ! -f build-fuzz/build.ninja ]]; then
      CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DVLAKE_BUILD_FUZZERS=ON -DVLAKE_BUILD_TESTS=OFF -DVLAKE_WERROR=OFF >/dev/null
    fi
    cmake --build build-fuzz -j2 --target vlake_fuzzers
    ;;
  run)
    name=$2
    secs=$3
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    corpus=()
    [[ -d fuzz/corpus/$name ]] && corpus=(fuzz/corpus/$name)
    "build-fuzz/fuzz/$name" -max_total_time="$secs" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 "$work" "${corpus[@]}"
    ;;
  *)
    echo "usage: scripts/fuzz.sh build | run NAME SECONDS" >&2
    exit 2
    ;;
esac
