// vlake: the one CLI binary. Thin: parses the subcommand and hands over.
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/vlake/commands.h"
#include "vector/blas_env.h"

namespace {

constexpr char kUsage[] =
    R"(vlake — S3-compatible storage node and vector database

Usage: vlake <command> [flags]

Commands:
  serve      run the embedded default: the storage node on a local data folder
             (./vlake-data, S3 on 127.0.0.1:9000) and the vector database beside it
             (Milvus gRPC/REST + JSON API on 127.0.0.1:19530)
  storage    run the storage node alone (same flags as serve)
  vectordb   run the vector database alone against any S3 endpoint (--s3 URL)
  collection create|list|describe|drop|flush|compact|load|release a collection
  insert     insert vectors from a file (.fvecs .bvecs .fbin .u8bin .npy .csv ...)
  index      build an index (index build NAME --type HNSW ...) or show a job
  search     top-k search with filters, per-request nprobe/ef, range search
  query      rows by id or filter
  delete     delete rows by id or filter
  cp         copy a file to s3://BUCKET/KEY or back (--direct: direct data path)
  ls         list buckets or objects
  rm         delete an object
  mb         create a bucket
  bench s3   load generator for any S3 endpoint (PUT/GET, size, concurrency, duration)
  bench transfer
             HTTP body vs direct data path (UCX shm/tcp) throughput and CPU
  bench index
             index build/search per index type vs FAISS and hnswlib called directly
  bench gpu  end-to-end index builds: GPU fed over the direct path vs CPU fed over HTTP
  bench milvus
             the Milvus API over the wire vs the same engine in-process (inserts, QPS)
  gpu info   CUDA devices this build can use (or why there are none)
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
  using vlake::app::ServeRole;
  if (cmd == "serve" || cmd == "storage" || cmd == "vectordb" || cmd == "bench") {
    // Libraries that read their environment when loaded: OpenBLAS/OpenMP for FAISS, and UCX,
    // whose own ERROR lines cover situations the engine handles (a client without peer-failure
    // detection, a client that vanished); every UCX failure that matters reaches vlake's log
    // as a Status. One re-exec at most; values the user set win.
    vlake::EnvDefaults env = vlake::vector::MathEnvironmentDefaults();
    env.push_back({"UCX_LOG_LEVEL", "fatal"});
    env.push_back({"UCX_WARN_UNUSED_ENV_VARS", "n"});
    vlake::ReexecWithEnvironment(env);
  }
  if (cmd == "serve") return vlake::app::RunServe(argc - 2, argv + 2, ServeRole::kServe);
  if (cmd == "storage") return vlake::app::RunServe(argc - 2, argv + 2, ServeRole::kStorageOnly);
  if (cmd == "vectordb") return vlake::app::RunVectorDb(argc - 2, argv + 2);
  if (cmd == "collection" || cmd == "insert" || cmd == "index" || cmd == "search" ||
      cmd == "query" || cmd == "delete") {
    return vlake::app::RunVectorCli(cmd, argc - 2, argv + 2);
  }
  if (cmd == "bench") return vlake::app::RunBench(argc - 2, argv + 2);
  if (cmd == "gpu") return vlake::app::RunGpu(argc - 2, argv + 2);
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
