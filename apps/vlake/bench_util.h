// Helpers shared by the `vlake bench` commands and the S3 CLI: credentials from the
// environment, sizes, generated data, CPU time.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "common/encoding.h"

namespace vlake::app {

// Credentials from VLAKE_ACCESS_KEY / VLAKE_SECRET_KEY, each falling back to its AWS_* twin;
// leaves an output untouched when neither is set.
inline void EnvCredentials(std::string* access_key, std::string* secret_key) {
  if (const char* v = std::getenv("VLAKE_ACCESS_KEY")) {
    *access_key = v;
  } else if (const char* a = std::getenv("AWS_ACCESS_KEY_ID")) {
    *access_key = a;
  }
  if (const char* v = std::getenv("VLAKE_SECRET_KEY")) {
    *secret_key = v;
  } else if (const char* a = std::getenv("AWS_SECRET_ACCESS_KEY")) {
    *secret_key = a;
  }
}

// "4K", "16M", "1G" (binary units) or a plain byte count; nullopt when malformed.
inline std::optional<uint64_t> ParseSize(std::string s) {
  uint64_t mult = 1;
  if (!s.empty()) {
    char c = static_cast<char>(std::toupper(s.back()));
    if (c == 'K') mult = 1024;
    if (c == 'M') mult = 1024 * 1024;
    if (c == 'G') mult = 1024ull * 1024 * 1024;
    if (mult != 1) s.pop_back();
  }
  auto v = ParseUint64(s);
  if (!v) return std::nullopt;
  return *v * mult;
}

// xorshift64* stream: fast enough to generate GB/s, distinct per object.
inline void FillObject(uint64_t seed, int index, std::string* out, uint64_t size) {
  out->resize(size);
  uint64_t x =
      seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ull + 1;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545F4914F6CDD1Dull;
    std::memcpy(out->data() + i, &v, 8);
  }
  for (; i < size; ++i) (*out)[i] = static_cast<char>(i * 31 + index);
}

// CPU seconds (user + system) of this process so far.
inline double CpuSecondsOfSelf() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of another process (from /proc/PID/stat); 0 when unknown.
inline double CpuSecondsOfPid(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t pos = rp + 2;
  while (pos < stat.size()) {
    size_t sp = stat.find(' ', pos);
    fields.push_back(stat.substr(pos, sp - pos));
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  if (fields.size() < 13) return 0;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

}  // namespace vlake::app
