// Process memory figures for reports (index jobs, benchmarks). Linux /proc only; 0 elsewhere.
// Thread-safe; ResetPeakRss affects the whole process.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>

namespace vlake {

// Peak resident set size (VmHWM) in bytes since process start or the last ResetPeakRss.
inline int64_t PeakRssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  int64_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmHWM: %" SCNd64, &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

// Restarts the peak from the current RSS (writes 5 to /proc/self/clear_refs).
inline void ResetPeakRss() {
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return;
  std::fputs("5", f);
  std::fclose(f);
}

}  // namespace vlake
