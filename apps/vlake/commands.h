// Subcommands of the vlake CLI. Each takes the arguments after its name and returns the
// process exit code.
#pragma once

namespace vlake::app {

int RunServe(int argc, char** argv);
int RunBench(int argc, char** argv);

}  // namespace vlake::app
