// vlake: the one CLI binary. Thin: parses the subcommand and hands over.
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/vlake/commands.h"

namespace {

constexpr char kUsage[] =
    R"(vlake — S3-compatible storage node (and, in later releases, a vector database)

Usage: vlake <command> [flags]

Commands:
  serve      run the embedded default: the storage node on a local data folder
             (./vlake-data, 127.0.0.1:9000)
  storage    run the storage node alone (same flags as serve)
  cp         copy a file to s3://BUCKET/KEY or back (--direct: direct data path)
  ls         list buckets or objects
  rm         delete an object
  mb         create a bucket
  bench s3   load generator for any S3 endpoint (PUT/GET, size, concurrency, duration)
  bench transfer
             HTTP body vs direct data path (UCX shm/tcp) throughput and CPU
  version    print the version

Run `vlake <command> --help` for the flags of a command.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "serve" || cmd == "storage") return vlake::app::RunServe(argc - 2, argv + 2);
  if (cmd == "bench") return vlake::app::RunBench(argc - 2, argv + 2);
  if (cmd == "cp" || cmd == "ls" || cmd == "rm" || cmd == "mb") {
    return vlake::app::RunS3Cli(cmd, argc - 2, argv + 2);
  }
  if (cmd == "version" || cmd == "--version") {
    std::puts("vlake 0.1.0");
    return 0;
  }
  std::fprintf(stderr, "vlake: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
