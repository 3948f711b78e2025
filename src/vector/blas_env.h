// OpenBLAS / OpenMP environment for FAISS. Debian's OpenBLAS (DYNAMIC_ARCH) misdetects some
// recent Xeons and falls back to slow kernels, which makes FAISS 3-7x slower; OpenMP threads
// that spin after a parallel region starve OpenBLAS's own threads on the same cores (measured
// here: brute-force search 15x, k-means 20x slower). Both libraries read their variables once,
// when loaded, so the defaults go in through common/reexec.h. A value the user set is kept.
#pragma once

#include <string>

#include "common/reexec.h"

namespace vlake::vector {

// The OpenBLAS core type for this CPU from CPUID: "Cooperlake" (AVX-512 BF16), "SkylakeX"
// (AVX-512 F/BW/DQ/VL), "Haswell" (AVX2+FMA), or "" when none of those apply.
std::string DetectOpenBlasCoreType();

// OPENBLAS_CORETYPE (detected) and OMP_WAIT_POLICY=PASSIVE.
EnvDefaults MathEnvironmentDefaults();

// ReexecWithEnvironment(MathEnvironmentDefaults()): for mains that need nothing else.
void EnsureOpenBlasCoreType();

// What the running process uses: "SkylakeX (set by vlake)", "Haswell (from environment)", ...
std::string OpenBlasCoreTypeNote();

}  // namespace vlake::vector
