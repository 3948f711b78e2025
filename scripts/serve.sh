#!/usr/bin/env bash
# Command (1) of the README: install what is missing, build, and run the embedded default:
# `vlake serve` with data in ./vlake-data on 127.0.0.1:9000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec ./build/apps/vlake/vlake serve "$@"
