// OpenBLAS core-type selection. Debian's OpenBLAS (DYNAMIC_ARCH) misdetects some recent Xeons
// and falls back to slow kernels, which makes FAISS 3-7x slower; it reads OPENBLAS_CORETYPE
// once, when the library is loaded (before main), so the fix is to set the variable and
// re-execute the program. A value the user set is always kept.
#pragma once

#include <string>

namespace vlake::vector {

// The OpenBLAS core type for this CPU from CPUID: "Cooperlake" (AVX-512 BF16), "SkylakeX"
// (AVX-512 F/BW/DQ/VL), "Haswell" (AVX2+FMA), or "" when none of those apply.
std::string DetectOpenBlasCoreType();

// When OPENBLAS_CORETYPE is unset and a core type is detected, sets it; when OMP_WAIT_POLICY
// is unset, sets it to PASSIVE (spinning OpenMP threads starve OpenBLAS's threads); then sets
// VLAKE_OPENBLAS_CORETYPE_SET (so this happens once) and re-executes /proc/self/exe with the
// same arguments. Returns normally when nothing needs doing or the re-exec failed. Call it
// first thing in main, before any thread starts.
void EnsureOpenBlasCoreType();

// What the running process uses: "SkylakeX (set by vlake)", "Haswell (from environment)", ...
std::string OpenBlasCoreTypeNote();

}  // namespace vlake::vector
