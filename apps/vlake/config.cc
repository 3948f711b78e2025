#include "apps/vlake/config.h"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/encoding.h"

namespace vlake::app {

const char kServeHelp[] =
    R"(Usage: vlake serve [flags]      (also: vlake storage [flags])

Runs the storage node: an S3-compatible object server on a local data folder.

Flags (each also settable by env var and config-file key; flags win, then env, then file):
  --listen HOST:PORT       address to serve S3 on            VLAKE_LISTEN       listen
                           (default 127.0.0.1:9000; port 0 picks a free port)
  --data DIR               data folder                       VLAKE_DATA         data
                           (default ./vlake-data)
  --users FILE             JSON users file                   VLAKE_USERS_FILE   users_file
                           {"users":[{"access_key","secret_key","user_id","display_name"}]}
                           Without it: one user from VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY, else
                           one generated on first start, saved in DIR/credentials.json.
  --region NAME            region reported to clients        VLAKE_REGION       region
                           (default us-east-1)
  --domain NAME            virtual-host-style suffix, repeatable: <bucket>.NAME
                           (default localhost)               VLAKE_DOMAINS      domains
  --allow-anonymous-read   let unsigned GET/HEAD read        VLAKE_ALLOW_ANONYMOUS_READ
                                                                                allow_anonymous_read
  --no-fsync               do not fsync (benchmarks only: acknowledged writes can be lost)
                                                             VLAKE_FSYNC=0      fsync
  --max-connections N      concurrent connections (default 1024)                max_connections
  --tls-cert FILE          serve HTTPS (S3 and vector database ports) with this PEM
                           certificate chain, leaf first        VLAKE_TLS_CERT     tls_cert
  --tls-key FILE           the certificate's PEM private key    VLAKE_TLS_KEY      tls_key
                           (both or neither; neither: plain HTTP)
  --max-unauthenticated-connections N   connections none of whose requests was signed yet
                           (default 256); over it the oldest one between requests is closed,
                           else the new one gets 503
                           VLAKE_MAX_UNAUTHENTICATED_CONNECTIONS
                                                      max_unauthenticated_connections
  --max-unauthenticated-per-peer N   the same, per client address (default 64)
                           VLAKE_MAX_UNAUTHENTICATED_PER_PEER max_unauthenticated_per_peer
  --header-timeout-s N     a request head must arrive within N s (default 15)
                                                  VLAKE_HEADER_TIMEOUT_S header_timeout_s
  --idle-timeout-s N       close keep-alive connections idle N s (default 60)
                                                  VLAKE_IDLE_TIMEOUT_S idle_timeout_s
  --min-body-rate B        request bodies must arrive at >= B bytes/s, judged per 10 s of
                           waiting after a 10 s grace (default 1024; 0: off)
                                                  VLAKE_MIN_BODY_RATE min_body_rate
  --no-direct              decline x-amz-rdma-token requests (direct data path)
                                                             VLAKE_DIRECT=0     direct
  --direct-transports TLS  UCX transports for the direct path (UCX_TLS syntax, e.g.
                           "posix,sysv,tcp"; default: all UCX finds)
                                                  VLAKE_DIRECT_TRANSPORTS direct_transports
  --direct-workers N       UCX data-plane threads (default 2)                   direct_workers
  --vector-listen HOST:PORT  the embedded vector database's port: Milvus gRPC (plain text),
                           Milvus REST v2 and the JSON API on one port (serve only; default
                           127.0.0.1:19530; port 0 picks a free one)
                                                    VLAKE_VECTOR_LISTEN vector_listen
  --vector-bucket NAME     bucket the vector database keeps its collections in, owned by
                           an internal identity (in nobody's ListBuckets)
                           (default vlake-vectordb)  VLAKE_VECTOR_BUCKET vector_bucket
  --segment-max-mb N       seal growing vectors into a segment object at N MiB (default 256)
                                                                                segment_max_mb
  --no-vectordb            run the storage node without the vector database
                                                             VLAKE_VECTORDB=0   vectordb
  --log-level LEVEL        debug|info|warn|error (default info)  VLAKE_LOG_LEVEL log_level
  --config FILE            JSON config file with the keys above  VLAKE_CONFIG
  --help                   this text

Endpoints besides S3: GET /health, GET /metrics (Prometheus text), both unauthenticated.
`vlake serve` also hosts the vector database (docs/vectordb-api.md) on --vector-listen, over
the storage node's own S3 endpoint (direct data path when on); if that port is taken it says
so and serves S3 alone. Its API takes the same users (Authorization: Bearer KEY:SECRET or
SigV4; 401 without, 403 on another user's collection). `vlake storage` is the storage node only.
SIGINT/SIGTERM stop accepting, drain in-flight requests, then exit.
)";

namespace {

Status ApplyJson(const std::string& path, ServeConfig* cfg) {
  std::ifstream in(path);
  if (!in) return Error(Code::kInvalidArgument, "cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error(Code::kInvalidArgument, "config file " + path + " is not a JSON object");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    auto str = [&](std::string* dst) -> Status {
      if (!v.is_string())
        return Error(Code::kInvalidArgument, path + ": " + k + " must be a string");
      *dst = v.get<std::string>();
      return Status::Ok();
    };
    if (k == "listen")
      VLAKE_RETURN_IF_ERROR(str(&cfg->listen));
    else if (k == "data")
      VLAKE_RETURN_IF_ERROR(str(&cfg->data_dir));
    else if (k == "users_file")
      VLAKE_RETURN_IF_ERROR(str(&cfg->users_file));
    else if (k == "region")
      VLAKE_RETURN_IF_ERROR(str(&cfg->region));
    else if (k == "log_level")
      VLAKE_RETURN_IF_ERROR(str(&cfg->log_level));
    else if (k == "tls_cert")
      VLAKE_RETURN_IF_ERROR(str(&cfg->tls_cert));
    else if (k == "tls_key")
      VLAKE_RETURN_IF_ERROR(str(&cfg->tls_key));
    else if (k == "allow_anonymous_read" && v.is_boolean())
      cfg->allow_anonymous_read = v.get<bool>();
    else if (k == "fsync" && v.is_boolean())
      cfg->fsync = v.get<bool>();
    else if (k == "max_connections" && v.is_number_integer())
      cfg->max_connections = v.get<int>();
    else if (k == "max_unauthenticated_connections" && v.is_number_integer())
      cfg->max_unauthenticated_connections = v.get<int>();
    else if (k == "max_unauthenticated_per_peer" && v.is_number_integer())
      cfg->max_unauthenticated_per_peer = v.get<int>();
    else if (k == "header_timeout_s" && v.is_number_integer() && v.get<int>() >= 1)
      cfg->header_timeout_s = v.get<int>();
    else if (k == "idle_timeout_s" && v.is_number_integer() && v.get<int>() >= 1)
      cfg->idle_timeout_s = v.get<int>();
    else if (k == "min_body_rate" && v.is_number_integer() && v.get<int64_t>() >= 0)
      cfg->min_body_rate = v.get<int64_t>();
    else if (k == "direct" && v.is_boolean())
      cfg->direct = v.get<bool>();
    else if (k == "vector_listen")
      VLAKE_RETURN_IF_ERROR(str(&cfg->vector_listen));
    else if (k == "vector_bucket")
      VLAKE_RETURN_IF_ERROR(str(&cfg->vector_bucket));
    else if (k == "vectordb" && v.is_boolean())
      cfg->vectordb = v.get<bool>();
    else if (k == "segment_max_mb" && v.is_number_integer() && v.get<int64_t>() >= 1)
      cfg->segment_max_mb = v.get<int64_t>();
    else if (k == "direct_transports")
      VLAKE_RETURN_IF_ERROR(str(&cfg->direct_transports));
    else if (k == "direct_workers" && v.is_number_integer() && v.get<int>() >= 1 &&
             v.get<int>() <= 64)
      cfg->direct_workers = v.get<int>();
    else if (k == "domains" && v.is_array()) {
      cfg->domains.clear();
      for (const auto& d : v) {
        if (!d.is_string())
          return Error(Code::kInvalidArgument, path + ": domains must be strings");
        cfg->domains.push_back(d.get<std::string>());
      }
    } else {
      return Error(Code::kInvalidArgument, path + ": unknown or mistyped key " + k);
    }
  }
  return Status::Ok();
}

// A decimal in [lo, hi] from a flag or env value; kInvalidArgument names `what`.
Status ParseBounded(const std::string& text, int64_t lo, int64_t hi, const std::string& what,
                    int64_t* out) {
  auto v = ParseUint64(text);
  if (!v || static_cast<int64_t>(*v) < lo || *v > static_cast<uint64_t>(hi)) {
    return Error(Code::kInvalidArgument, "bad " + what + " " + text);
  }
  *out = static_cast<int64_t>(*v);
  return Status::Ok();
}

// The numeric connection-hardening settings: one table for env vars and flags.
struct NumericSetting {
  const char* flag;
  const char* env;
  int64_t lo, hi;
  int64_t ServeConfig::*field64;
  int ServeConfig::*field;
};
const NumericSetting kNumericSettings[] = {
    {"--max-unauthenticated-connections", "VLAKE_MAX_UNAUTHENTICATED_CONNECTIONS", 0, 1000000,
     nullptr, &ServeConfig::max_unauthenticated_connections},
    {"--max-unauthenticated-per-peer", "VLAKE_MAX_UNAUTHENTICATED_PER_PEER", 0, 1000000, nullptr,
     &ServeConfig::max_unauthenticated_per_peer},
    {"--header-timeout-s", "VLAKE_HEADER_TIMEOUT_S", 1, 86400, nullptr,
     &ServeConfig::header_timeout_s},
    {"--idle-timeout-s", "VLAKE_IDLE_TIMEOUT_S", 1, 86400, nullptr, &ServeConfig::idle_timeout_s},
    {"--min-body-rate", "VLAKE_MIN_BODY_RATE", 0, int64_t{1} << 40, &ServeConfig::min_body_rate,
     nullptr},
};

Status SetNumeric(const NumericSetting& n, const std::string& text, ServeConfig* cfg) {
  int64_t v = 0;
  VLAKE_RETURN_IF_ERROR(ParseBounded(text, n.lo, n.hi, n.flag, &v));
  if (n.field64) {
    cfg->*n.field64 = v;
  } else {
    cfg->*n.field = static_cast<int>(v);
  }
  return Status::Ok();
}

bool EnvTrue(const char* v) {
  std::string s = AsciiLower(v);
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

}  // namespace

Status SplitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error(Code::kInvalidArgument, "--listen wants HOST:PORT, got " + text);
  }
  auto p = ParseUint64(text.substr(colon + 1));
  if (!p || *p > 65535) return Error(Code::kInvalidArgument, "bad port in " + text);
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = static_cast<uint16_t>(*p);
  return Status::Ok();
}

Result<ServeConfig> LoadServeConfig(int argc, char** argv, bool* help) {
  ServeConfig cfg;
  *help = false;
  std::string config_path;
  if (const char* v = std::getenv("VLAKE_CONFIG")) config_path = v;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[i + 1];
    if (a.starts_with("--config=")) config_path = a.substr(9);
  }
  if (!config_path.empty()) VLAKE_RETURN_IF_ERROR(ApplyJson(config_path, &cfg));

  if (const char* v = std::getenv("VLAKE_LISTEN")) cfg.listen = v;
  if (const char* v = std::getenv("VLAKE_DATA")) cfg.data_dir = v;
  if (const char* v = std::getenv("VLAKE_USERS_FILE")) cfg.users_file = v;
  if (const char* v = std::getenv("VLAKE_REGION")) cfg.region = v;
  if (const char* v = std::getenv("VLAKE_LOG_LEVEL")) cfg.log_level = v;
  if (const char* v = std::getenv("VLAKE_TLS_CERT")) cfg.tls_cert = v;
  if (const char* v = std::getenv("VLAKE_TLS_KEY")) cfg.tls_key = v;
  if (const char* v = std::getenv("VLAKE_ALLOW_ANONYMOUS_READ"))
    cfg.allow_anonymous_read = EnvTrue(v);
  if (const char* v = std::getenv("VLAKE_FSYNC")) cfg.fsync = EnvTrue(v);
  if (const char* v = std::getenv("VLAKE_DIRECT")) cfg.direct = EnvTrue(v);
  if (const char* v = std::getenv("VLAKE_DIRECT_TRANSPORTS")) cfg.direct_transports = v;
  if (const char* v = std::getenv("VLAKE_VECTOR_LISTEN")) cfg.vector_listen = v;
  if (const char* v = std::getenv("VLAKE_VECTOR_BUCKET")) cfg.vector_bucket = v;
  if (const char* v = std::getenv("VLAKE_VECTORDB")) cfg.vectordb = EnvTrue(v);
  for (const NumericSetting& n : kNumericSettings) {
    if (const char* v = std::getenv(n.env)) VLAKE_RETURN_IF_ERROR(SetNumeric(n, v, &cfg));
  }
  if (const char* v = std::getenv("VLAKE_DOMAINS")) {
    cfg.domains.clear();
    std::string_view s = v;
    while (!s.empty()) {
      size_t c = s.find(',');
      std::string_view d = TrimWhitespace(s.substr(0, c));
      if (!d.empty()) cfg.domains.emplace_back(d);
      s = c == std::string_view::npos ? std::string_view() : s.substr(c + 1);
    }
  }

  bool domains_from_flags = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_inline = false;
    if (size_t eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    auto next = [&](std::string* dst) -> Status {
      if (has_inline) {
        *dst = value;
        return Status::Ok();
      }
      if (i + 1 >= argc) return Error(Code::kInvalidArgument, a + " needs a value");
      *dst = argv[++i];
      return Status::Ok();
    };
    const NumericSetting* numeric = nullptr;
    for (const NumericSetting& n : kNumericSettings) {
      if (a == n.flag) numeric = &n;
    }
    if (numeric) {
      std::string n;
      VLAKE_RETURN_IF_ERROR(next(&n));
      VLAKE_RETURN_IF_ERROR(SetNumeric(*numeric, n, &cfg));
    } else if (a == "--help" || a == "-h") {
      *help = true;
    } else if (a == "--listen") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.listen));
    } else if (a == "--data") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.data_dir));
    } else if (a == "--users") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.users_file));
    } else if (a == "--region") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.region));
    } else if (a == "--log-level") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.log_level));
    } else if (a == "--tls-cert") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.tls_cert));
    } else if (a == "--tls-key") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.tls_key));
    } else if (a == "--config") {
      std::string ignored;
      VLAKE_RETURN_IF_ERROR(next(&ignored));
    } else if (a == "--domain") {
      std::string d;
      VLAKE_RETURN_IF_ERROR(next(&d));
      if (!domains_from_flags) cfg.domains.clear();
      domains_from_flags = true;
      cfg.domains.push_back(d);
    } else if (a == "--max-connections") {
      std::string n;
      VLAKE_RETURN_IF_ERROR(next(&n));
      auto v = ParseUint64(n);
      if (!v || *v == 0 || *v > 1000000)
        return Error(Code::kInvalidArgument, "bad --max-connections");
      cfg.max_connections = static_cast<int>(*v);
    } else if (a == "--allow-anonymous-read") {
      cfg.allow_anonymous_read = true;
    } else if (a == "--no-fsync") {
      cfg.fsync = false;
    } else if (a == "--no-direct") {
      cfg.direct = false;
    } else if (a == "--vector-listen") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.vector_listen));
    } else if (a == "--vector-bucket") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.vector_bucket));
    } else if (a == "--no-vectordb") {
      cfg.vectordb = false;
    } else if (a == "--segment-max-mb") {
      std::string n;
      VLAKE_RETURN_IF_ERROR(next(&n));
      auto v = ParseUint64(n);
      if (!v || *v == 0 || *v > (1u << 20)) {
        return Error(Code::kInvalidArgument, "bad --segment-max-mb");
      }
      cfg.segment_max_mb = static_cast<int64_t>(*v);
    } else if (a == "--direct-transports") {
      VLAKE_RETURN_IF_ERROR(next(&cfg.direct_transports));
    } else if (a == "--direct-workers") {
      std::string n;
      VLAKE_RETURN_IF_ERROR(next(&n));
      auto v = ParseUint64(n);
      if (!v || *v == 0 || *v > 64) return Error(Code::kInvalidArgument, "bad --direct-workers");
      cfg.direct_workers = static_cast<int>(*v);
    } else {
      return Error(Code::kInvalidArgument, "unknown flag " + a + " (see --help)");
    }
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    return Error(Code::kInvalidArgument, "--tls-cert and --tls-key go together");
  }
  return cfg;
}

}  // namespace vlake::app
