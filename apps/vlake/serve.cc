// `vlake serve` / `vlake storage`: opens the store, loads users, starts the HTTP server and
// waits for SIGINT/SIGTERM to drain and stop.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "apps/vlake/commands.h"
#include "apps/vlake/config.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/metrics.h"
#include "http/server.h"
#include "http/tls.h"
#include "milvus/grpc_front.h"
#include "milvus/grpc_service.h"
#include "milvus/rest_v2.h"
#include "rdma/cuda_ipc.h"
#include "rdma/ucx_engine.h"
#include "s3/errors.h"
#include "s3/service.h"
#include "s3/users.h"
#include "store/store.h"
#include "vectordb/engine.h"
#include "vectordb/http_api.h"

namespace vlake::app {
namespace {

void RaiseFileLimit() {
  // Every open object and every connection holds descriptors; use what the hard limit allows.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

Result<s3::UserDirectory> LoadUsers(const ServeConfig& cfg, std::string* source) {
  if (!cfg.users_file.empty()) {
    *source = "users file " + cfg.users_file;
    return s3::UserDirectory::FromFile(cfg.users_file);
  }
  const char* ak = std::getenv("VLAKE_ACCESS_KEY");
  const char* sk = std::getenv("VLAKE_SECRET_KEY");
  if (ak && sk && *ak && *sk) {
    *source = "VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY";
    s3::User u{ak, sk, ak, ak};
    return s3::UserDirectory::FromJson(s3::UsersToJson({u}));
  }
  if ((ak && *ak) != (sk && *sk)) {
    return Error(Code::kInvalidArgument, "set both VLAKE_ACCESS_KEY and VLAKE_SECRET_KEY");
  }
  bool created = false;
  auto dir = s3::UserDirectory::LoadOrCreateGenerated(cfg.data_dir, &created);
  *source = std::string(created ? "generated now, saved in " : "generated earlier, kept in ") +
            cfg.data_dir + "/credentials.json";
  return dir;
}

// The connection hardening settings shared by the S3 and the vector database listeners.
void ApplyConnectionLimits(const ServeConfig& cfg, http::ServerOptions* o) {
  o->max_unauthenticated_connections = cfg.max_unauthenticated_connections;
  o->max_unauthenticated_per_peer = cfg.max_unauthenticated_per_peer;
  o->header_timeout_ms = cfg.header_timeout_s * 1000;
  o->idle_timeout_ms = cfg.idle_timeout_s * 1000;
  o->min_body_rate_bytes_per_s = static_cast<uint64_t>(cfg.min_body_rate);
}

}  // namespace

// The identity under which the embedded vector database keeps its objects: a user of the S3
// surface that no person has (its secret is new at every start and never shown), so the
// vector database's bucket is in nobody's ListBuckets and nobody can delete it through S3.
constexpr char kInternalUserId[] = "vlake-internal";

s3::User MakeInternalUser() {
  return s3::User{"VLAKEINTERNAL" + HexEncode(RandomBytes(6)), HexEncode(RandomBytes(24)),
                  kInternalUserId, "vlake internal"};
}

// Hands the vector database's bucket to the internal identity. Data folders from before the
// identity existed have it owned by the first user (whose credentials the embedded database
// used then); a bucket of that name owned by anyone else is theirs, not the database's.
Status ClaimVectorBucket(store::Store* store, const std::string& bucket,
                         const std::string& former_owner) {
  Result<store::BucketInfo> info = store->GetBucket(bucket);
  if (!info.ok()) return info.status().code() == Code::kNoSuchBucket ? Status::Ok() : info.status();
  if (info->owner_id == kInternalUserId) return Status::Ok();
  if (info->owner_id != former_owner) {
    return Status(Code::kBucketAlreadyExists, "bucket " + bucket + " belongs to user " +
                                                  info->owner_id +
                                                  "; choose another --vector-bucket");
  }
  VLAKE_RETURN_IF_ERROR(store->SetBucketOwner(bucket, kInternalUserId));
  Log(LogLevel::kInfo, "vector database bucket handed to the internal identity",
      {{"bucket", bucket}, {"former_owner", former_owner}});
  return Status::Ok();
}

// The vector database beside the storage node: engine, API, and its own listener.
struct VectorDb {
  std::unique_ptr<vectordb::VectorEngine> engine;
  std::unique_ptr<vectordb::ApiAuthenticator> auth;
  std::unique_ptr<vectordb::VectorHttpApi> api;
  std::unique_ptr<milvus::MilvusGrpcService> milvus;
  std::unique_ptr<milvus::GrpcFront> grpc;  // gets the vector port's HTTP/2 connections
  std::unique_ptr<milvus::MilvusRestV2> rest;  // /v2/vectordb/..., onto the gRPC service
  std::unique_ptr<http::HttpServer> server;
  std::string host;
  VectorDb& operator=(VectorDb&& o) noexcept {
    server = std::move(o.server);  // the listener goes first, the engine last
    rest = std::move(o.rest);
    grpc = std::move(o.grpc);
    milvus = std::move(o.milvus);
    api = std::move(o.api);
    auth = std::move(o.auth);
    engine = std::move(o.engine);
    host = std::move(o.host);
    return *this;
  }
};

// `internal`: the S3 identity the engine uses; `api_users`: who may call the vector API (the
// storage node's users), `default_owner` owning collections made before owners existed;
// `tls`: the storage node's TLS context, served on the vector port too (null: plain HTTP).
Status StartVectorDb(const ServeConfig& cfg, const std::string& s3_endpoint,
                     const s3::User& internal, s3::UserDirectory api_users,
                     const std::string& default_owner, MetricsRegistry* metrics, bool direct,
                     std::shared_ptr<const http::TlsContext> tls, VectorDb* out) {
  const s3::User& user = internal;
  vectordb::ObjectStoreOptions so;
  so.client.endpoint = s3_endpoint;
  // Over HTTPS the storage node is trusted by its own certificate (the client takes any
  // certificate of its CA file as an anchor).
  so.client.ca_file = cfg.tls_cert;
  so.client.access_key = user.access_key;
  so.client.secret_key = user.secret_key;
  so.client.region = cfg.region;
  so.client.direct = direct ? client::DirectMode::kAuto : client::DirectMode::kOff;
  so.bucket = cfg.vector_bucket;
  VLAKE_ASSIGN_OR_RETURN(auto store, vectordb::ObjectStore::Open(so));
  vectordb::EngineOptions eo;
  eo.segment_max_bytes = cfg.segment_max_mb << 20;
  eo.metrics = metrics;
  VLAKE_ASSIGN_OR_RETURN(out->engine, vectordb::VectorEngine::Open(std::move(store), eo));
  out->auth = std::make_unique<vectordb::ApiAuthenticator>(std::move(api_users), default_owner);
  out->api = std::make_unique<vectordb::VectorHttpApi>(out->engine.get(), out->auth.get());
  http::ServerOptions vo;
  VLAKE_RETURN_IF_ERROR(SplitHostPort(cfg.vector_listen, &vo.host, &vo.port));
  ApplyConnectionLimits(cfg, &vo);
  vo.tls = std::move(tls);
  vo.io_timeout_ms = 600'000;  // large binary inserts and index builds with wait=true
  // gRPC (the Milvus SDKs) on the same port: plain-text HTTP/2 connections are handed over.
  out->milvus = std::make_unique<milvus::MilvusGrpcService>(out->engine.get(), out->auth.get());
  VLAKE_ASSIGN_OR_RETURN(out->grpc, milvus::GrpcFront::Start(out->milvus.get()));
  milvus::GrpcFront* grpc = out->grpc.get();
  vo.http2_handoff = [grpc](int fd) { grpc->Adopt(fd); };
  out->rest = std::make_unique<milvus::MilvusRestV2>(grpc->InProcessChannel());
  vectordb::VectorHttpApi* api = out->api.get();
  milvus::MilvusRestV2* rest = out->rest.get();
  out->server = std::make_unique<http::HttpServer>(
      vo, [api, rest](http::HttpRequest& req, http::BodyReader& body) {
        if (milvus::MilvusRestV2::Handles(req)) return rest->Handle(req, body);
        return api->Handle(req, body);
      });
  Status st = out->server->Start();
  if (!st.ok()) {
    return Status(st.code(), "cannot listen on " + cfg.vector_listen + ": " + st.message());
  }
  out->host = vo.host == "0.0.0.0" || vo.host == "::" ? "127.0.0.1" : vo.host;
  return Status::Ok();
}

int RunServe(int argc, char** argv, ServeRole role) {
  bool help = false;
  auto cfg_or = LoadServeConfig(argc, argv, &help);
  if (help) {
    std::fputs(kServeHelp, stdout);
    return 0;
  }
  if (!cfg_or.ok()) {
    std::fprintf(stderr, "vlake serve: %s\n", cfg_or.error().message().c_str());
    return 2;
  }
  ServeConfig cfg = std::move(*cfg_or);
  LogLevel level;
  if (!ParseLogLevel(cfg.log_level, &level)) {
    std::fprintf(stderr, "vlake serve: bad log level %s\n", cfg.log_level.c_str());
    return 2;
  }
  SetLogLevel(level);
  RaiseFileLimit();

  http::ServerOptions sopts;
  if (Status st = SplitHostPort(cfg.listen, &sopts.host, &sopts.port); !st.ok()) {
    std::fprintf(stderr, "vlake serve: %s\n", st.message().c_str());
    return 2;
  }
  sopts.max_connections = cfg.max_connections;
  ApplyConnectionLimits(cfg, &sopts);
  // The refusal is an S3 error document from the one table (503 ServiceUnavailable).
  sopts.reject = [](const Status& s) { return s3::ErrorResponse(s, "", "", false); };
  if (!cfg.tls_cert.empty()) {
    auto tls = http::TlsContext::ForServer(cfg.tls_cert, cfg.tls_key);
    if (!tls.ok()) {
      std::fprintf(stderr, "vlake serve: %s\n", tls.error().message().c_str());
      return 1;
    }
    sopts.tls = std::move(*tls);
  }
  const std::string scheme = sopts.tls ? "https://" : "http://";

  if (::mkdir(cfg.data_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "vlake serve: cannot create %s\n", cfg.data_dir.c_str());
    return 1;
  }
  char abs[PATH_MAX];
  if (realpath(cfg.data_dir.c_str(), abs)) cfg.data_dir = abs;

  store::StoreOptions store_opts;
  store_opts.sync = cfg.fsync;
  auto store = store::Store::Open(cfg.data_dir, store_opts);
  if (!store.ok()) {
    std::fprintf(stderr, "vlake serve: cannot open store: %s\n", store.error().ToString().c_str());
    return 1;
  }
  std::string user_source;
  auto users = LoadUsers(cfg, &user_source);
  if (!users.ok()) {
    std::fprintf(stderr, "vlake serve: users: %s\n", users.error().message().c_str());
    return 1;
  }
  const s3::User first_user = users->users().front();
  size_t user_count = users->users().size();
  for (const s3::User& u : users->users()) {
    if (u.user_id == kInternalUserId) {
      std::fprintf(stderr, "vlake serve: users: the user id %s is reserved\n", kInternalUserId);
      return 1;
    }
  }
  const s3::UserDirectory api_users = *users;
  const s3::User internal_user = MakeInternalUser();
  std::vector<s3::User> s3_users = users->users();
  s3_users.push_back(internal_user);

  MetricsRegistry metrics;
  s3::S3Options s3opts;
  s3opts.region = cfg.region;
  s3opts.allow_anonymous_read = cfg.allow_anonymous_read;
  s3opts.private_owner_id = kInternalUserId;
  s3opts.domains = cfg.domains;
  std::unique_ptr<rdma::Engine> direct_engine;
  std::string ipc_note;
  if (cfg.direct) {
    std::vector<std::unique_ptr<rdma::Engine>> engines;
    // UCX_LOG_LEVEL defaults to fatal: main() sets it before UCX loads.
    rdma::UcxEngineOptions ucx;
    ucx.transports = cfg.direct_transports;
    ucx.workers = cfg.direct_workers;
    auto engine = rdma::CreateUcxEngine(ucx);
    if (engine.ok()) {
      engines.push_back(std::move(*engine));
    } else {
      // The object store works without it; tokens are then declined.
      Log(LogLevel::kWarn, "direct data path unavailable", {{"error", engine.error().ToString()}});
    }
    // GPU clients on this host: CUDA IPC tokens are served when this process sees a GPU.
    auto ipc = rdma::CreateCudaIpcEngine();
    if (ipc.ok()) {
      engines.push_back(std::move(*ipc));
      ipc_note = "; cuda-ipc for GPU memory on this host";
    } else {
      ipc_note = "; cuda-ipc off: " + ipc.error().message();
    }
    if (!engines.empty()) {
      direct_engine = rdma::CombineEngines(std::move(engines));
      s3opts.direct_engine = direct_engine.get();
    }
  }
  s3::S3Service service(store->get(), s3::UserDirectory(std::move(s3_users)), s3opts, &metrics);

  // Block the stop signals before any thread starts so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  http::HttpServer server(sopts, [&service](http::HttpRequest& req, http::BodyReader& body) {
    return service.Handle(req, body);
  });
  if (Status st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "vlake serve: cannot listen on %s: %s\n", cfg.listen.c_str(),
                 st.ToString().c_str());
    return 1;
  }
  std::string host = sopts.host == "0.0.0.0" || sopts.host == "::" ? "127.0.0.1" : sopts.host;

  // The embedded vector database talks to this storage node through the client SDK, like
  // any other S3 client (and over the direct data path when it is on).
  VectorDb vdb;
  std::string vector_note = role == ServeRole::kStorageOnly ? "" : "off (--no-vectordb)";
  if (role == ServeRole::kServe && cfg.vectordb) {
    Status st = ClaimVectorBucket(store->get(), cfg.vector_bucket, first_user.user_id);
    if (st.ok()) {
      st = StartVectorDb(cfg, scheme + host + ":" + std::to_string(server.port()), internal_user,
                         api_users, first_user.user_id, &metrics, direct_engine != nullptr,
                         sopts.tls, &vdb);
    }
    if (st.ok()) {
      vector_note = scheme + vdb.host + ":" + std::to_string(vdb.server->port()) +
                    (sopts.tls ? " (JSON API over HTTPS; Milvus gRPC needs plain text, off"
                               : " (Milvus gRPC + REST v2, and JSON API") +
                    "; collections in bucket " + cfg.vector_bucket + ")";
    } else {
      vector_note = "off (" + st.message() + ")";
      Log(LogLevel::kWarn, "vector database not started", {{"error", st.ToString()}});
      vdb = VectorDb();
    }
  }
  std::printf("vlake storage node is serving S3\n");
  std::printf("  endpoint:   %s%s:%u\n", scheme.c_str(), host.c_str(), server.port());
  std::printf("  data:       %s\n", cfg.data_dir.c_str());
  std::printf("  region:     %s\n", cfg.region.c_str());
  std::printf("  direct:     %s\n", direct_engine
                                        ? ("UCX (x-amz-rdma-token; transports: " +
                                           (cfg.direct_transports.empty() ? std::string("all found")
                                                                          : cfg.direct_transports) +
                                           ")" + ipc_note)
                                              .c_str()
                                        : "off (x-amz-rdma-token declined)");
  if (!vector_note.empty()) std::printf("  vector db:  %s\n", vector_note.c_str());
  std::printf("  users:      %zu (%s)\n", user_count, user_source.c_str());
  std::printf("  access key: %s\n", first_user.access_key.c_str());
  std::printf("  secret key: %s\n", first_user.secret_key.c_str());
  std::printf(
      "  try:        AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --endpoint-url "
      "%s%s:%u%s s3 ls\n",
      first_user.access_key.c_str(), first_user.secret_key.c_str(), scheme.c_str(), host.c_str(),
      server.port(), sopts.tls ? " --ca-bundle CA.pem" : "");
  std::fflush(stdout);
  Log(LogLevel::kInfo, "serving", {{"listen", cfg.listen}, {"data", cfg.data_dir}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Log(LogLevel::kInfo, "stopping: draining in-flight requests",
      {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  if (vdb.server) vdb.server->Stop();
  vdb = VectorDb();  // the engine's background jobs finish before the S3 side goes
  server.Stop();
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace vlake::app
