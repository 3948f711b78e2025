#!/usr/bin/env bash
# Command (2) of the README: install what is missing, build, and run the whole test suite
# (unit, end-to-end with real clients, crash, bounded fuzzing). `scripts/test.sh -L unit` runs
# a quick subset (any ctest arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
ctest --test-dir build --output-on-failure -j2 "$@"
