#!/usr/bin/env bash
# Configures (once) and builds vlake into ./build with the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVLAKE_WERROR=ON
fi
cmake --build build -j"$(nproc)"
