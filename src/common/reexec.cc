#include "common/reexec.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace vlake {

void ReexecWithEnvironment(const EnvDefaults& defaults) {
  if (std::getenv("VLAKE_SET_ENV") != nullptr) return;  // this is the re-executed process
  std::string set;
  for (const auto& [name, value] : defaults) {
    if (value.empty() || std::getenv(name.c_str()) != nullptr) continue;
    setenv(name.c_str(), value.c_str(), 1);
    set += (set.empty() ? "" : ",") + name;
  }
  if (set.empty()) return;
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
  setenv("VLAKE_SET_ENV", set.c_str(), 1);
  execv("/proc/self/exe", argv.data());
}

bool SetByReexec(const std::string& name) {
  const char* set = std::getenv("VLAKE_SET_ENV");
  if (set == nullptr) return false;
  std::string list = std::string(",") + set + ",";
  return list.find("," + name + ",") != std::string::npos;
}

}  // namespace vlake
