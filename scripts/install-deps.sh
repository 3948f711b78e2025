#!/usr/bin/env bash
# Installs everything vlake needs to build, run and test on Debian bookworm (apt only, plus the
# npm packages of the JS client tests). Idempotent: skips what is already there.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the real S3 clients and servers the tests drive
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

build_pkgs=(build-essential cmake ninja-build ccache pkg-config git
            libfaiss-dev libopenblas-dev liblapack-dev libhnswlib-dev
            libssl-dev zlib1g-dev librocksdb-dev libucx-dev libisal-dev nlohmann-json3-dev
            libgtest-dev libgmock-dev
            libgrpc++-dev libprotobuf-dev libprotoc-dev protobuf-compiler protobuf-compiler-grpc)
test_pkgs=(python3 python3-venv curl nginx-light s3cmd rclone awscli nodejs npm dataset-fashion-mnist
           clang-14 libclang-rt-14-dev)

missing=()
for p in "${build_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ $want_test -eq 1 ]]; then
  for p in "${test_pkgs[@]}"; do
    # Tools the image may already ship outside dpkg (pyenv python, a newer node) count too.
    case "$p" in
      python3) command -v python3 >/dev/null && continue ;;
      nodejs) command -v node >/dev/null && continue ;;
      npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ $want_test -eq 1 ]]; then
  # boto3/botocore for the Python client tests: the image's Python may already have them
  # (boto3 1.43); otherwise Debian's python3-boto3.
  if ! python3 -c 'import boto3' 2>/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-boto3
  fi
  # The AWS JS SDK v3 for the JS client test (npm registry).
  if [[ -f tests/integration/node/package.json && ! -d tests/integration/node/node_modules/@aws-sdk/client-s3 ]]; then
    # Not fatal: without the registry the JS SDK test skips and says so.
    (cd tests/integration/node && npm install --no-audit --no-fund --loglevel=error) ||
      echo "install-deps: npm install failed; e2e_js_sdk will skip" >&2
  fi
  # The Milvus Node SDK for the Milvus API tests (its .proto files feed milvus_proto_test).
  if [[ -f tests/integration/milvus/package.json &&
        ! -d tests/integration/milvus/node_modules/@zilliz/milvus2-sdk-node ]]; then
    (cd tests/integration/milvus && npm install --no-audit --no-fund --loglevel=error) ||
      echo "install-deps: npm install failed; e2e_milvus_sdk will skip" >&2
  fi
  # The SDK's 3.0.x line for the same suites (e2e_milvus_sdk3, e2e_milvus_schema3).
  if [[ -f tests/integration/milvus3/package.json &&
        ! -d tests/integration/milvus3/node_modules/@zilliz/milvus2-sdk-node ]]; then
    (cd tests/integration/milvus3 && npm install --no-audit --no-fund --loglevel=error) ||
      echo "install-deps: npm install failed; e2e_milvus_sdk3 will skip" >&2
  fi
  # LangChain.js with its Milvus vector store (e2e_langchain_milvus).
  if [[ -f tests/integration/langchain/package.json &&
        ! -d tests/integration/langchain/node_modules/@langchain/community ]]; then
    (cd tests/integration/langchain && npm install --no-audit --no-fund --loglevel=error) ||
      echo "install-deps: npm install failed; e2e_langchain_milvus will skip" >&2
  fi
fi
