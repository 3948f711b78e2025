#!/usr/bin/env bash
# Index build and search per index type, vlake vs FAISS / hnswlib called directly, in one run:
# starts a storage node (no fsync: the build is measured, not the disk), runs
# `vlake bench index --s3` against it (each segment is uploaded once; the index job pipeline
# fetch/decode/train/add/serialize/upload is timed; the raw libraries build from the same
# arrays in the same process) and appends the final JSON line to
# bench/results/index-<date>.jsonl. Fashion-MNIST comes from Debian's dataset-fashion-mnist.
#
#   bench/index.sh [--datasets clustered-1m-128,clustered-200k-768,fashion-mnist]
#                  [--types FLAT,IVF_FLAT,IVF_SQ8,IVF_PQ,HNSW] [--nlist 1024] ...
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export VLAKE_ACCESS_KEY=benchindex VLAKE_SECRET_KEY=benchindexsecret0123
start_storage_node

out="$work/bench.txt"
"$bin" bench index --s3 "http://127.0.0.1:$port" "$@" | tee "$out"
mkdir -p "$here/results"
tail -1 "$out" >>"$here/results/index-$(date +%F).jsonl"
