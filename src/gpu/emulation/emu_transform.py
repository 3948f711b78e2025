#!/usr/bin/env python3
"""Rewrites a CUDA source (.cu) into host C++ for the CPU emulation in cuda_emu.h.

Usage: emu_transform.py INPUT.cu OUTPUT.cc

These constructs are rewritten (line numbers are kept); everything else is compiled as written
by the host compiler with cuda_emu.h's definitions of the CUDA keywords and intrinsics:
  - launches `kernel<T...><<<grid, block, smem, stream>>>(args)` become
    `EmuLaunch("kernel<T...>", kernel<T...>, grid, block, smem, stream, args)` (all four launch
    parameters must be given, as the vlake kernels do);
  - `__shared__ T name[dims];` becomes a reference to the block's poisoned shared memory
    (`EmuShared<T[dims]>(&site)`), and `extern __shared__ T name[];` a pointer to the launch's
    dynamic shared memory (`EmuDynamicShared()`);
  - `__launch_bounds__(N)` is dropped from the declaration and `EmuLaunchBounds(N);` checks it
    at the top of the kernel's body;
  - `#include <cub/device/device_radix_sort.cuh>` becomes the emulation's cub_emu.h.
The output starts with `#include "gpu/emulation/cuda_emu.h"` and a #line directive, so compiler
messages point at the original .cu file.
"""
import re
import sys


def rewrite_launches(src: str) -> str:
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
        out.append('EmuLaunch("' + name.strip() + '", ' + name + ', ' + cfg + ', ')
        i = e + 4
    return ''.join(out)


DYNAMIC_SHARED = re.compile(
    r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*)\s+(\w+)\s*\[\s*\]\s*;')
STATIC_SHARED = re.compile(
    r'__shared__\s+((?:typename\s+)?[A-Za-z_][\w:<>, ]*?)\s+(\w+)\s*((?:\[[^\]\n]*\])*)\s*;')
LAUNCH_BOUNDS = re.compile(r'__launch_bounds__\(([^()]*)\)')


def rewrite_shared(src: str) -> str:
    src = DYNAMIC_SHARED.sub(
        lambda m: f'{m.group(1)}* {m.group(2)} = static_cast<{m.group(1)}*>(EmuDynamicShared());',
        src)
    counter = [0]

    def static(m):
        counter[0] += 1
        tag = f'emu_shared_site_{counter[0]}'
        dims = m.group(3).replace(' ', '')
        return (f'static char {tag}; auto& {m.group(2)} = '
                f'EmuShared<{m.group(1)}{dims}>(&{tag});')

    return STATIC_SHARED.sub(static, src)


def rewrite_launch_bounds(src: str) -> str:
    while True:
        m = LAUNCH_BOUNDS.search(src)
        if not m:
            return src
        # The kernel's parameter list, then its body.
        p = src.find('(', m.end())
        depth, q = 0, p
        while True:
            if src[q] == '(':
                depth += 1
            elif src[q] == ')':
                depth -= 1
                if depth == 0:
                    break
            q += 1
        b = src.find('{', q)
        if b < 0:
            raise SystemExit('emu_transform: __launch_bounds__ without a kernel body')
        src = (src[:m.start()] + src[m.end():b + 1] + f' EmuLaunchBounds({m.group(1)});' +
               src[b + 1:])


def transform(src: str) -> str:
    s = rewrite_launches(src)
    s = rewrite_shared(s)
    s = rewrite_launch_bounds(s)
    return s.replace('#include <cub/device/device_radix_sort.cuh>',
                     '#include "gpu/emulation/cub_emu.h"')


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: emu_transform.py INPUT.cu OUTPUT.cc')
    src_path, dst_path = sys.argv[1], sys.argv[2]
    with open(src_path) as f:
        body = transform(f.read())
    code = re.sub(r'//[^\n]*', '', body)
    if '<<<' in code:
        raise SystemExit(f'emu_transform: a launch in {src_path} was not rewritten')
    if '__shared__' in code:
        raise SystemExit(f'emu_transform: a __shared__ declaration in {src_path} was not rewritten')
    header = '#include "gpu/emulation/cuda_emu.h"\n#line 1 "%s"\n' % src_path
    with open(dst_path, 'w') as f:
        f.write(header + body)


if __name__ == '__main__':
    main()
