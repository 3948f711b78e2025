// Subcommands of the vlake CLI. Each takes the arguments after its name and returns the
// process exit code.
#pragma once

#include <string>

namespace vlake::app {

enum class ServeRole { kServe, kStorageOnly };  // serve = storage node + vector database
int RunServe(int argc, char** argv, ServeRole role);
int RunVectorDb(int argc, char** argv);                        // `vectordb --s3 URL`
int RunVectorCli(const std::string& cmd, int argc, char** argv);  // collection|insert|index|search
int RunBenchIndex(int argc, char** argv);  // `bench index` (argv[0] == "index")
int RunBenchGpu(int argc, char** argv);    // `bench gpu` (argv[0] == "gpu")
int RunBenchMilvus(int argc, char** argv);  // `bench milvus`
int RunBench(int argc, char** argv);
int RunGpu(int argc, char** argv);  // `gpu info`
int RunBenchTransfer(int argc, char** argv);  // `bench transfer` (argv[0] == "transfer")
// cp, ls, rm, mb
int RunS3Cli(const std::string& cmd, int argc, char** argv);

}  // namespace vlake::app
