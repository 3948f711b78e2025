// Subcommands of the vlake CLI. Each takes the arguments after its name and returns the
// process exit code.
#pragma once

#include <string>

namespace vlake::app {

int RunServe(int argc, char** argv);
int RunBench(int argc, char** argv);
int RunBenchTransfer(int argc, char** argv);  // `bench transfer` (argv[0] == "transfer")
// cp, ls, rm, mb
int RunS3Cli(const std::string& cmd, int argc, char** argv);

}  // namespace vlake::app
