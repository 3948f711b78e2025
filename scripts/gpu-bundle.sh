#!/usr/bin/env bash
# Packs what a GPU machine needs to run vlake's GPU tests and benchmarks from a build made here
# (sm_90): the stripped binaries scripts/gpu-check.sh runs (vlake, gpu_test, gpu_rules_test) and
# the shared libraries they load that a bare CUDA image may lack (UCX with its transport
# modules, OpenBLAS, ISA-L, RocksDB, libstdc++, ...), into .gpu-bundle/ and compressed into
# .gpu-bundle.tar.xz (both in .gitignore, so the device tool copies them only when carried;
# the archive is what is carried, 64 MiB at most with the working tree). The CUDA runtime is
# linked statically; cuBLAS, compute-sanitizer and nvidia-smi come from the device's own CUDA
# 13 toolkit and driver; bench/ and python3 (the device image has one) do the rest.
#
#   scripts/gpu-bundle.sh            then, on the device: scripts/gpu-check.sh quick|full
set -euo pipefail
cd "$(dirname "$0")/.."
build="${VLAKE_BUILD_DIR:-build}"
bundle=.gpu-bundle
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib/ucx"
bins=("$build/apps/vlake/vlake")
for t in gpu_test gpu_rules_test; do
  f="$(find "$build/src/gpu" -maxdepth 1 -name "$t" -type f | head -1)"
  if [ -n "$f" ]; then
    bins+=("$f")
  else
    echo "note: no $t in $build (gpu_test needs a CUDA build): gpu-check.sh will skip it" >&2
  fi
done
for b in "${bins[@]}"; do
  cp "$b" "$bundle/bin/"
  strip --strip-debug "$bundle/bin/$(basename "$b")"
done
# Libraries outside glibc, the driver and CUDA (the device has its own of those).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libcuda\.|libcublas|libcublasLt|libcudart)'
for b in "$bundle"/bin/*; do
  ldd "$b" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  name="$(basename "$lib")"
  [[ "$name" =~ $skip ]] && continue
  cp -L "$lib" "$bundle/lib/$name"
done
ucxdir="$(pkg-config --variable=libdir ucx 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/ucx"
for m in libuct_posix libuct_sysv libuct_cma libuct_tcp libuct_ib libucx_perftest_cuda; do
  f="$ucxdir/$m.so.0"
  [ -e "$f" ] && cp -L "$f" "$bundle/lib/ucx/"
done
git rev-parse --short HEAD >"$bundle/COMMIT" 2>/dev/null || echo unknown >"$bundle/COMMIT"
strip --strip-unneeded "$bundle"/lib/*.so* "$bundle"/lib/ucx/*.so* 2>/dev/null || true
tar -C . -cf - "$bundle" | xz -T2 -6 >"$bundle.tar.xz"
size_mib=$(( $(stat -c %s "$bundle.tar.xz") / 1048576 ))
echo "bundle: $bundle.tar.xz, ${size_mib} MiB compressed ($(cd "$bundle/bin" && echo *))"
if [ "$size_mib" -gt 48 ]; then
  echo "bundle too large for the device's 64 MiB carry limit (with the working tree)" >&2
  exit 1
fi
