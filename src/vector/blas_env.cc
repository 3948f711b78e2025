#include "vector/blas_env.h"

#include <cstdlib>

namespace vlake::vector {

std::string DetectOpenBlasCoreType() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

EnvDefaults MathEnvironmentDefaults() {
  return {{"OPENBLAS_CORETYPE", DetectOpenBlasCoreType()}, {"OMP_WAIT_POLICY", "PASSIVE"}};
}

void EnsureOpenBlasCoreType() { ReexecWithEnvironment(MathEnvironmentDefaults()); }

std::string OpenBlasCoreTypeNote() {
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  if (core == nullptr) return "OpenBLAS default detection";
  return std::string(core) +
         (SetByReexec("OPENBLAS_CORETYPE") ? " (set by vlake)" : " (from environment)");
}

}  // namespace vlake::vector
