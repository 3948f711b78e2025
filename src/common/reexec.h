// Environment defaults for libraries that read their environment once, when they are loaded
// (OpenBLAS's core type, libgomp's wait policy, UCX's log settings): setting a variable in
// main is too late for them, so the process re-executes itself once with the defaults.
//
// Call first thing in main, before any thread starts. A value already in the environment is
// always kept. Not thread-safe (it changes the environment).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace vlake {

using EnvDefaults = std::vector<std::pair<std::string, std::string>>;

// Sets every unset variable of `defaults`; if it set any, records their names in
// VLAKE_SET_ENV (which also stops a second round) and execv's /proc/self/exe with the same
// arguments. Returns when nothing needed setting, the re-exec already happened, or execv
// failed (the process then goes on with what it has).
void ReexecWithEnvironment(const EnvDefaults& defaults);

// True when this process's `name` came from ReexecWithEnvironment (not from the user).
bool SetByReexec(const std::string& name);

}  // namespace vlake
