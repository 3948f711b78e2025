// Measurement helpers shared by the `vlake bench` commands.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace vlake::app {

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
