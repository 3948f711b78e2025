#!/usr/bin/env python3
"""Rewrites a CUDA source (.cu) into host C++ for the CPU emulation in cuda_emu.h.

Usage: emu_transform.py INPUT.cu OUTPUT.cc

Only two constructs are rewritten; everything else is compiled as written by the host compiler
with cuda_emu.h's definitions of the CUDA keywords and intrinsics:
  - launches `kernel<T...><<<grid, block, smem, stream>>>(args)` become
    `EmuLaunch(kernel<T...>, grid, block, smem, stream, args)` (all four launch parameters must
    be given, as the vlake kernels do);
  - `extern __shared__ float smem[];` becomes a pointer to the emulator's dynamic shared memory.
The output starts with `#include "gpu/emulation/cuda_emu.h"` and a #line directive, so compiler
messages point at the original .cu file.
"""
import sys


def transform(src: str) -> str:
    out = []
    i = 0
    while True:
        j = src.find('<<<', i)
        if j < 0:
            out.append(src[i:])
            break
        # The kernel name: walk back over the identifier, including its template arguments.
        k = j
        depth = 0
        while k > 0:
            c = src[k - 1]
            if c == '>':
                depth += 1
            elif c == '<':
                depth -= 1
            elif depth == 0 and not (c.isalnum() or c in '_:'):
                break
            k -= 1
        name = src[k:j]
        e = src.find('>>>(', j)
        if e < 0:
            raise SystemExit(f'emu_transform: unterminated launch near offset {j}')
        cfg = src[j + 3:e]
        out.append(src[i:k])
        out.append('EmuLaunch(' + name + ', ' + cfg + ', ')
        i = e + 4
    s = ''.join(out)
    return s.replace('extern __shared__ float smem[];', 'float* smem = g_dyn_smem.data();')


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: emu_transform.py INPUT.cu OUTPUT.cc')
    src_path, dst_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        body = transform(f.read())
    if '<<<' in body:
        raise SystemExit(f'emu_transform: a launch in {src_path} was not rewritten')
    header = '#include "gpu/emulation/cuda_emu.h"\n#line 1 "%s"\n' % src_path
    with open(dst_path, 'w') as f:
        f.write(header + body)


if __name__ == '__main__':
    main()
