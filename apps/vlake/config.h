// Configuration of `vlake serve` / `vlake storage`: defaults, then a JSON config file, then
// environment variables, then command-line flags (later wins). README.md documents each key.
//
// Thread-safety: plain values, built once at startup.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vlake::app {

struct ServeConfig {
  std::string listen = "127.0.0.1:9000";  // HOST:PORT; port 0 picks a free one
  std::string data_dir = "./vlake-data";
  std::string users_file;  // JSON users file; empty: env or generated user
  std::string region = "us-east-1";
  std::vector<std::string> domains = {"localhost"};  // virtual-host-style suffixes
  bool allow_anonymous_read = false;
  bool fsync = true;  // false only for throwaway benchmarks: acknowledged writes may be lost
  std::string log_level = "info";
  int max_connections = 1024;
  // Connection hardening (http::ServerOptions has the full story): connections that have not
  // authenticated yet, in all and per peer address; the request head's time limit; the idle
  // keep-alive limit; the minimum request body rate (0: off).
  int max_unauthenticated_connections = 256;
  int max_unauthenticated_per_peer = 64;
  int header_timeout_s = 15;
  int idle_timeout_s = 60;
  int64_t min_body_rate = 1024;  // bytes/s
  // HTTPS on the S3 port and the vector database's port: PEM certificate chain (leaf first)
  // and private key. Both or neither; neither: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
  // Direct data path (x-amz-rdma-token, UCX). Off: every token is declined (501).
  bool direct = true;
  std::string direct_transports;  // UCX_TLS for the server; empty: every transport UCX finds
  int direct_workers = 2;         // UCX workers (data-plane threads)

  // Embedded vector database (serve only; `vlake storage` never runs it).
  bool vectordb = true;
  std::string vector_listen = "127.0.0.1:19530";  // Milvus gRPC + JSON API; 0 picks a port
  std::string vector_bucket = "vlake-vectordb";   // where collections keep their objects
  int64_t segment_max_mb = 256;                   // seal growing data at this many MiB
};

// Applies config file (path from --config or VLAKE_CONFIG), env and flags (argv after the
// subcommand). kInvalidArgument with a message on an unknown flag or bad value; `*help` is set
// when --help was given.
Result<ServeConfig> LoadServeConfig(int argc, char** argv, bool* help);

extern const char kServeHelp[];

// "host:port" -> parts; kInvalidArgument when malformed.
Status SplitHostPort(const std::string& text, std::string* host, uint16_t* port);

}  // namespace vlake::app
