#include "vector/blas_env.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

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

void EnsureOpenBlasCoreType() {
  if (std::getenv("VLAKE_OPENBLAS_CORETYPE_SET") != nullptr) return;  // re-exec already tried
  std::string core = std::getenv("OPENBLAS_CORETYPE") ? "" : DetectOpenBlasCoreType();
  bool set_wait = std::getenv("OMP_WAIT_POLICY") == nullptr;
  if (core.empty() && !set_wait) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<char*> argv;
  for (size_t at = 0; at < cmdline.size();) {
    argv.push_back(cmdline.data() + at);
    at = cmdline.find('\0', at);
    if (at == std::string::npos) break;
    ++at;
  }
  if (argv.empty()) return;
  argv.push_back(nullptr);
  if (!core.empty()) setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  // OpenMP threads that spin after a parallel region starve OpenBLAS's own threads on the
  // same cores (measured here: brute-force search 15x slower, k-means 20x slower).
  if (set_wait) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv("VLAKE_OPENBLAS_CORETYPE_SET", core.empty() ? "wait" : "1", 1);
  execv("/proc/self/exe", argv.data());
  // The re-exec failed: carry on with what the libraries detected themselves.
}

std::string OpenBlasCoreTypeNote() {
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  if (core == nullptr) return "OpenBLAS default detection";
  const char* set = std::getenv("VLAKE_OPENBLAS_CORETYPE_SET");
  return std::string(core) + (set && std::string(set) == "1" ? " (set by vlake)"
                                                              : " (from environment)");
}

}  // namespace vlake::vector
