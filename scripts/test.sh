#!/usr/bin/env bash
# Command (2) of the README: install what is missing, build, and run the whole test suite
# (unit, end-to-end with real clients, crash, bounded fuzzing). `scripts/test.sh -L unit` runs
# a quick subset (any ctest arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
rc=0
ctest --test-dir build --output-on-failure -j2 "$@" || rc=$?
# Skipped tests are reported as such by ctest (never as passed); say why, in one place.
log=build/Testing/Temporary/LastTest.log
if [[ -f $log ]] && grep -q '^vlake-skip:' "$log"; then
  echo
  echo "Skipped, and why:"
  grep '^vlake-skip:' "$log" | sort -u | sed 's/^vlake-skip: /  /'
fi
exit "$rc"
