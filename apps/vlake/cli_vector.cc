// Vector database commands: `vectordb` (the engine alone against any S3 endpoint) and the
// clients of its JSON API: collection, insert, index, search, query, delete, flush.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "apps/vlake/config.h"
#include "apps/vlake/credentials.h"
#include "common/log.h"
#include "http/client.h"
#include "http/server.h"
#include "http/tls.h"
#include "vector/blas_env.h"
#include "vector/dataset_io.h"
#include "vector/segment.h"
#include "vectordb/engine.h"
#include "vectordb/http_api.h"
#include "vectordb/schema_json.h"

namespace vlake::app {
namespace {

using json = nlohmann::json;

constexpr char kVectorDbHelp[] = R"(Usage: vlake vectordb --s3 URL [flags]

Runs the vector database alone against any S3 endpoint (vlake's own storage node, using the
direct data path when it offers one, or any S3-compatible store over plain HTTP).

  --s3 URL               S3 endpoint, http://HOST:PORT or https://HOST:PORT (required)
  --ca-bundle FILE       PEM certificates to trust for an https:// --s3 (default
                         $VLAKE_CA_BUNDLE, else the system's store)
  --access-key KEY       default: VLAKE_ACCESS_KEY or AWS_ACCESS_KEY_ID
  --secret-key KEY       default: VLAKE_SECRET_KEY or AWS_SECRET_ACCESS_KEY
  --region NAME          SigV4 region (default us-east-1)
  --bucket NAME          bucket for collections, created if missing (default vlake-vectordb)
  --prefix P             key prefix inside the bucket (default none)
  --listen HOST:PORT     JSON API address (default 127.0.0.1:19530; port 0 picks one)
  --users FILE           who may call the API (users-file JSON, as `vlake serve --users`);
                         default: the one user whose S3 keys are given above
  --no-direct            always use the HTTP body, never the direct data path
  --segment-max-mb N     seal growing vectors into a segment object at N MiB (default 256)
  --log-level LEVEL      debug|info|warn|error (default info)
)";

constexpr char kCliHelp[] =
    R"(Vector database commands (talk to the JSON API of `vlake serve` or `vlake vectordb`):

  vlake collection create NAME --dim D [--metric L2|IP|COSINE] [--field NAME:TYPE]...
                          [--primary-key id] [--auto-id] [--vector-field vector]
                          [--segment-max-rows N]          TYPE: int64|double|bool|varchar
  vlake collection list | describe NAME | drop NAME | flush NAME | compact NAME
                   | load NAME | release NAME
  vlake insert NAME --from FILE [--batch-rows N] [--id-start N] [--limit N]
                          [--csv-vector-column C] [--flush]
                          FILE: .fvecs .bvecs .ivecs .fbin .u8bin .i8bin .npy .csv .idx (.gz)
                          ids: --id-start+row unless the collection has auto_id
  vlake index build NAME --type FLAT|IVF_FLAT|IVF_SQ8|IVF_PQ|HNSW [--param K=V]... [--no-wait]
                          [--device cpu|gpu]  gpu: the vector column goes from the storage
                          node into GPU memory and the index is built there (IVF_FLAT, IVF_PQ,
                          HNSW via a CAGRA graph); the file is the CPU format either way
  vlake index status JOB
  vlake search NAME (--vector "x1,x2,..." | --queries FILE [--nq N]) [-k K] [--filter EXPR]
                          [--nprobe N] [--ef N] [--radius R] [--range-filter R]
                          [--output-fields a,b] [--json]
  vlake query NAME (--ids 1,2,3 | --filter EXPR) [--limit N] [--output-fields a,b]
  vlake delete NAME (--ids 1,2,3 | --filter EXPR)

Common: --endpoint URL (default $VLAKE_VECTOR_ENDPOINT or http://127.0.0.1:19530; https://
too), --ca-bundle FILE (certificates to trust for https://; default $VLAKE_CA_BUNDLE, else the
system's store), --quiet (no progress bars; they only show on a terminal). Filter grammar:
docs/filter.md.
Credentials (sent as Authorization: Bearer KEY:SECRET): VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY,
else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the first user of --data DIR/credentials.json
(default ./vlake-data, what `vlake serve` generates).
)";

// Arguments as (flag -> values) plus positionals; flags take one value unless listed as bare.
struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;
  std::string Get(const std::string& k, const std::string& fallback = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? fallback : it->second;
  }
  bool Has(const std::string& k) const { return flags.count(k) > 0; }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto [b, e] = flags.equal_range(k);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
};

Result<Args> ParseArgs(int argc, char** argv, std::initializer_list<const char*> bare) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 1 && s[0] == '-' && !(s.size() > 1 && (std::isdigit(s[1]) || s[1] == '.'))) {
      std::string key = s, value;
      bool inline_value = false;
      if (size_t eq = s.find('='); eq != std::string::npos) {
        key = s.substr(0, eq);
        value = s.substr(eq + 1);
        inline_value = true;
      }
      bool is_bare = false;
      for (const char* b : bare) is_bare |= key == b;
      if (!is_bare && !inline_value) {
        if (i + 1 >= argc) return Status(Code::kInvalidArgument, key + " needs a value");
        value = argv[++i];
      }
      a.flags.emplace(key, value);
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

std::string Endpoint(const Args& a) {
  const char* env = std::getenv("VLAKE_VECTOR_ENDPOINT");
  return a.Get("--endpoint", env ? env : "http://127.0.0.1:19530");
}

std::string CaBundle(const Args& a) {
  const char* env = std::getenv("VLAKE_CA_BUNDLE");
  return a.Get("--ca-bundle", env ? env : "");
}

class ApiClient {
 public:
  // `ca_file`: certificates to trust for an https:// endpoint (empty: the system's store).
  static Result<ApiClient> Connect(const std::string& endpoint, const std::string& data_dir,
                                   const std::string& ca_file) {
    std::string access_key, secret_key;
    if (!CliCredentials(data_dir, &access_key, &secret_key)) {
      return Status(Code::kUnauthenticated,
                    "no credentials: set VLAKE_ACCESS_KEY/VLAKE_SECRET_KEY or point --data at "
                    "a folder with credentials.json");
    }
    std::string rest = endpoint;
    const bool https = rest.starts_with("https://");
    if (https) {
      rest = rest.substr(8);
    } else if (rest.starts_with("http://")) {
      rest = rest.substr(7);
    }
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    std::string host;
    uint16_t port = 0;
    VLAKE_RETURN_IF_ERROR(SplitHostPort(rest, &host, &port));
    std::shared_ptr<const http::TlsContext> tls;
    if (https) {
      VLAKE_ASSIGN_OR_RETURN(tls,
                             http::TlsContext::ForClient(ca_file, http::PeerVerification::kVerify));
    }
    return ApiClient(host, port, "Bearer " + access_key + ":" + secret_key, std::move(tls));
  }

  Result<json> Call(std::string_view method, const std::string& path, const json* body,
                    std::string_view raw = {}, std::string_view content_type = {}) {
    std::vector<http::Header> headers = {{"Authorization", authorization_}};
    std::string payload;
    if (body != nullptr) {
      payload = body->dump();
      headers.push_back({"Content-Type", "application/json"});
    } else if (!content_type.empty()) {
      headers.push_back({"Content-Type", std::string(content_type)});
    }
    std::string_view send = body != nullptr ? std::string_view(payload) : raw;
    VLAKE_ASSIGN_OR_RETURN(http::ClientResponse resp, conn_->Send(method, path, headers, send));
    json j = json::parse(resp.body, nullptr, false);
    if (resp.status < 200 || resp.status >= 300) {
      std::string msg = j.is_object() && j.contains("error")
                            ? j["error"].value("code", "") + ": " + j["error"].value("message", "")
                            : "HTTP " + std::to_string(resp.status);
      return Status(Code::kInvalidArgument, msg);
    }
    if (j.is_discarded()) return Status(Code::kInternal, "reply is not JSON");
    return j;
  }

 private:
  ApiClient(std::string host, uint16_t port, std::string authorization,
            std::shared_ptr<const http::TlsContext> tls)
      : conn_(std::make_shared<http::HttpConnection>(std::move(host), port, 3'600'000,
                                                     std::move(tls))),
        authorization_(std::move(authorization)) {}
  std::shared_ptr<http::HttpConnection> conn_;
  std::string authorization_;
};

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "vlake %s: %s\n", what.c_str(), st.message().c_str());
  return 1;
}

std::vector<std::string> SplitList(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

class Progress {
 public:
  Progress(bool enabled) : enabled_(enabled && isatty(2)), t0_(std::chrono::steady_clock::now()) {}
  void Show(const std::string& what, int64_t done, std::optional<int64_t> total) {
    if (!enabled_) return;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (total && *total > 0) {
      int width = 30, filled = static_cast<int>(width * done / *total);
      std::fprintf(stderr, "\r%s [%s%s] %lld/%lld (%.0f/s)  ", what.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                   static_cast<long long>(done), static_cast<long long>(*total),
                   s > 0 ? done / s : 0.0);
    } else {
      std::fprintf(stderr, "\r%s %lld (%.0f/s)  ", what.c_str(), static_cast<long long>(done),
                   s > 0 ? done / s : 0.0);
    }
  }
  void Done() {
    if (enabled_) std::fputc('\n', stderr);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point t0_;
};

int CollectionCmd(const Args& a, ApiClient& api) {
  if (a.positional.empty()) {
    std::fputs(kCliHelp, stderr);
    return 2;
  }
  const std::string& sub = a.positional[0];
  if (sub == "list") {
    auto r = api.Call("GET", "/v1/collections", nullptr);
    if (!r.ok()) return Fail("collection list", r.status());
    for (const auto& n : (*r)["collections"]) std::printf("%s\n", n.get<std::string>().c_str());
    return 0;
  }
  if (a.positional.size() < 2) {
    std::fprintf(stderr, "vlake collection %s: NAME is required\n", sub.c_str());
    return 2;
  }
  const std::string& name = a.positional[1];
  Result<json> r = Status(Code::kInternal, "no request made");
  if (sub == "create") {
    json body = {{"name", name},
                 {"metric", a.Get("--metric", "L2")},
                 {"primary_key", a.Get("--primary-key", "id")},
                 {"vector_field", a.Get("--vector-field", "vector")},
                 {"auto_id", a.Has("--auto-id")}};
    auto dim = ParseUint64(a.Get("--dim"));
    if (!dim) {
      std::fprintf(stderr, "vlake collection create: --dim D is required\n");
      return 2;
    }
    body["dim"] = *dim;
    if (a.Has("--segment-max-rows")) {
      body["segment_max_rows"] = ParseUint64(a.Get("--segment-max-rows")).value_or(0);
    }
    json fields = json::array();
    for (const std::string& f : a.All("--field")) {
      size_t colon = f.find(':');
      if (colon == std::string::npos) {
        std::fprintf(stderr, "vlake collection create: --field wants NAME:TYPE, got %s\n",
                     f.c_str());
        return 2;
      }
      fields.push_back({{"name", f.substr(0, colon)}, {"type", f.substr(colon + 1)}});
    }
    body["fields"] = fields;
    r = api.Call("POST", "/v1/collections", &body);
  } else if (sub == "describe") {
    r = api.Call("GET", "/v1/collections/" + name, nullptr);
  } else if (sub == "drop") {
    r = api.Call("DELETE", "/v1/collections/" + name, nullptr);
  } else if (sub == "flush" || sub == "compact" || sub == "load" || sub == "release") {
    json empty = json::object();
    r = api.Call("POST", "/v1/collections/" + name + "/" + sub, &empty);
  } else {
    std::fprintf(stderr, "vlake collection: unknown subcommand %s\n", sub.c_str());
    return 2;
  }
  if (!r.ok()) return Fail("collection " + sub, r.status());
  std::printf("%s\n", r->dump(2).c_str());
  return 0;
}

// Converts a CSV cell to the field's type.
Status AppendCell(vector::ColumnData* c, const std::string& cell, int64_t line) {
  auto bad = [&](const char* want) {
    return Status(Code::kInvalidArgument, "row " + std::to_string(line) + ": column '" +
                                              c->field.name + "' wants " + want + ", got '" + cell +
                                              "'");
  };
  switch (vector::StorageOf(c->field.type)) {
    case vector::Storage::kInt64: {
      char* end = nullptr;
      long long v = std::strtoll(cell.c_str(), &end, 10);
      if (cell.empty() || *end) return bad("an integer");
      c->int64s.push_back(v);
      break;
    }
    case vector::Storage::kDouble: {
      char* end = nullptr;
      double v = std::strtod(cell.c_str(), &end);
      if (cell.empty() || *end) return bad("a number");
      c->doubles.push_back(v);
      break;
    }
    case vector::Storage::kBool: {
      std::string l = AsciiLower(cell);
      if (l != "true" && l != "false" && l != "1" && l != "0") return bad("true or false");
      c->bools.push_back(l == "true" || l == "1");
      break;
    }
    case vector::Storage::kBytes:
      c->bytes += cell;  // json: the engine checks the document
      c->offsets.push_back(c->bytes.size());
      break;
    case vector::Storage::kFloats:
      return bad("a scalar");
  }
  return Status::Ok();
}

int InsertCmd(const Args& a, ApiClient& api) {
  if (a.positional.empty() || !a.Has("--from")) {
    std::fprintf(stderr, "usage: vlake insert NAME --from FILE [--batch-rows N]\n");
    return 2;
  }
  const std::string& name = a.positional[0];
  auto desc = api.Call("GET", "/v1/collections/" + name, nullptr);
  if (!desc.ok()) return Fail("insert", desc.status());
  auto schema = vectordb::SchemaFromJson((*desc)["schema"]);
  if (!schema.ok()) return Fail("insert", schema.status());
  const std::string pk = schema->primary().name, vec = schema->vector().name;
  const bool auto_id = schema->primary().auto_id;
  const int dim = schema->dim();
  std::vector<vector::FieldSchema> fields;  // what the file supplies: all but an auto_id key
  for (const vector::FieldSchema& f : schema->fields) {
    if (!(f.primary_key && auto_id)) fields.push_back(f);
  }
  auto reader =
      vector::VectorFileReader::Open(a.Get("--from"), std::nullopt, a.Get("--csv-vector-column"));
  if (!reader.ok()) return Fail("insert", reader.status());
  if ((*reader)->dim() != dim) {
    return Fail("insert",
                Status(Code::kInvalidArgument,
                       "file has vectors of dimension " + std::to_string((*reader)->dim()) +
                           ", collection " + name + " has " + std::to_string(dim)));
  }
  int64_t batch_rows = static_cast<int64_t>(ParseUint64(a.Get("--batch-rows", "0")).value_or(0));
  if (batch_rows <= 0) batch_rows = std::max<int64_t>(1, (8 << 20) / (4 * dim));  // ~8 MiB
  int64_t limit = a.Has("--limit") ? static_cast<int64_t>(*ParseUint64(a.Get("--limit"))) : -1;
  int64_t next_id = static_cast<int64_t>(ParseUint64(a.Get("--id-start", "0")).value_or(0));
  std::optional<int64_t> total = (*reader)->total_rows();
  if (limit >= 0 && (!total || *total > limit)) total = limit;
  Progress progress(!a.Has("--quiet"));
  int64_t done = 0;
  vector::VectorBatch batch;
  while (limit < 0 || done < limit) {
    int64_t want = limit < 0 ? batch_rows : std::min(batch_rows, limit - done);
    if (Status st = (*reader)->Next(want, &batch); !st.ok()) return Fail("insert", st);
    if (batch.rows == 0) break;
    vector::RowBatch rows(fields);
    for (vector::ColumnData& c : rows.mutable_columns()) {
      if (c.field.name == vec) {
        c.floats = std::move(batch.vectors);
      } else if (c.field.name == pk) {
        const vector::CsvColumn* col = nullptr;
        for (const auto& cc : batch.columns) col = cc.name == pk ? &cc : col;
        for (int64_t r = 0; r < batch.rows; ++r) {
          if (col != nullptr) {
            if (Status st = AppendCell(&c, col->values[r], done + r + 1); !st.ok()) {
              return Fail("insert", st);
            }
          } else {
            c.int64s.push_back(next_id++);
          }
        }
      } else {
        const vector::CsvColumn* col = nullptr;
        for (const auto& cc : batch.columns) col = cc.name == c.field.name ? &cc : col;
        if (col == nullptr) {
          return Fail("insert", Status(Code::kInvalidArgument,
                                       "the file has no column for field '" + c.field.name +
                                           "' (CSV with a header row names the columns)"));
        }
        for (int64_t r = 0; r < batch.rows; ++r) {
          if (Status st = AppendCell(&c, col->values[r], done + r + 1); !st.ok()) {
            return Fail("insert", st);
          }
        }
      }
    }
    if (Status st = rows.Seal(); !st.ok()) return Fail("insert", st);
    std::string body = rows.Encode(vector::SegmentKind::kWalInsert);
    auto r = api.Call("POST", "/v1/collections/" + name + "/insert", nullptr, body,
                      vectordb::kSegmentContentType);
    if (!r.ok()) return Fail("insert", r.status());
    done += batch.rows;
    progress.Show("insert", done, total);
  }
  progress.Done();
  if (a.Has("--flush")) {
    json empty = json::object();
    auto r = api.Call("POST", "/v1/collections/" + name + "/flush", &empty);
    if (!r.ok()) return Fail("insert", r.status());
  }
  std::printf("inserted %lld rows into %s\n", static_cast<long long>(done), name.c_str());
  return 0;
}

void PrintJob(const json& job) {
  std::printf("job %s: %s (%s on %s) %lld/%lld segments, %.2f s, peak RSS %.1f MiB\n",
              job["id"].get<std::string>().c_str(), job["state"].get<std::string>().c_str(),
              job["spec"].get<std::string>().c_str(), job.value("device", "cpu").c_str(),
              static_cast<long long>(job["segments_done"].get<int64_t>()),
              static_cast<long long>(job["segments_total"].get<int64_t>()),
              job["total_s"].get<double>(), job["peak_rss_bytes"].get<int64_t>() / 1048576.0);
  for (const json& s : job["segments"]) {
    if (!s.value("skipped", "").empty()) {
      std::printf("  %s %lld rows: left exact, %s\n", s["segment"].get<std::string>().c_str(),
                  static_cast<long long>(s["rows"].get<int64_t>()),
                  s["skipped"].get<std::string>().c_str());
      continue;
    }
    std::printf(
        "  %s %lld rows: fetch %.3f s%s, decode %.3f, train %.3f, add %.3f, serialize "
        "%.3f, upload %.3f\n",
        s["segment"].get<std::string>().c_str(), static_cast<long long>(s["rows"].get<int64_t>()),
        s["fetch_s"].get<double>(),
        (" (" + s.value("fetch_path", std::string("http")) + ")").c_str(),
        s["decode_s"].get<double>(), s["train_s"].get<double>(), s["add_s"].get<double>(),
        s["serialize_s"].get<double>(), s["upload_s"].get<double>());
  }
  if (!job["error"].get<std::string>().empty()) {
    std::printf("  error: %s\n", job["error"].get<std::string>().c_str());
  }
}

int IndexCmd(const Args& a, ApiClient& api) {
  if (a.positional.size() < 2) {
    std::fputs(kCliHelp, stderr);
    return 2;
  }
  if (a.positional[0] == "status") {
    auto r = api.Call("GET", "/v1/jobs/" + a.positional[1], nullptr);
    if (!r.ok()) return Fail("index status", r.status());
    PrintJob(*r);
    return 0;
  }
  if (a.positional[0] != "build") {
    std::fputs(kCliHelp, stderr);
    return 2;
  }
  const std::string& name = a.positional[1];
  json body = {{"type", a.Get("--type", "HNSW")}};
  json params = json::object();
  for (const std::string& p : a.All("--param")) {
    size_t eq = p.find('=');
    auto v = eq == std::string::npos ? std::nullopt : ParseUint64(p.substr(eq + 1));
    if (!v) {
      std::fprintf(stderr, "vlake index build: --param wants KEY=INTEGER, got %s\n", p.c_str());
      return 2;
    }
    params[p.substr(0, eq)] = *v;
  }
  body["params"] = params;
  std::string device = a.Get("--device", "cpu");
  if (device != "cpu" && device != "gpu") {
    std::fprintf(stderr, "vlake index build: --device is cpu or gpu, got %s\n", device.c_str());
    return 2;
  }
  body["device"] = device;
  auto r = api.Call("POST", "/v1/collections/" + name + "/index", &body);
  if (!r.ok()) return Fail("index build", r.status());
  std::string id = (*r)["job"].get<std::string>();
  if (a.Has("--no-wait")) {
    std::printf("%s\n", id.c_str());
    return 0;
  }
  Progress progress(!a.Has("--quiet"));
  for (;;) {
    auto j = api.Call("GET", "/v1/jobs/" + id + "?wait_ms=500", nullptr);
    if (!j.ok()) return Fail("index build", j.status());
    std::string state = (*j)["state"].get<std::string>();
    progress.Show("index " + id, (*j)["segments_done"].get<int64_t>(),
                  (*j)["segments_total"].get<int64_t>());
    if (state == "done" || state == "failed") {
      progress.Done();
      PrintJob(*j);
      return state == "done" ? 0 : 1;
    }
  }
}

int SearchCmd(const Args& a, ApiClient& api) {
  if (a.positional.empty()) {
    std::fputs(kCliHelp, stderr);
    return 2;
  }
  const std::string& name = a.positional[0];
  json vectors = json::array();
  if (a.Has("--vector")) {
    json v = json::array();
    for (const std::string& x : SplitList(a.Get("--vector")))
      v.push_back(std::strtod(x.c_str(), nullptr));
    vectors.push_back(v);
  } else if (a.Has("--queries")) {
    int64_t nq = static_cast<int64_t>(ParseUint64(a.Get("--nq", "10")).value_or(10));
    auto data = vector::ReadVectors(a.Get("--queries"), nq);
    if (!data.ok()) return Fail("search", data.status());
    for (int64_t q = 0; q < data->rows; ++q) {
      vectors.push_back(std::vector<float>(data->vectors.begin() + q * data->dim,
                                           data->vectors.begin() + (q + 1) * data->dim));
    }
  } else {
    std::fprintf(stderr, "vlake search: --vector or --queries is required\n");
    return 2;
  }
  json body = {{"vectors", vectors},
               {"k", ParseUint64(a.Get("-k", a.Get("--k", "10"))).value_or(10)}};
  if (a.Has("--filter")) body["filter"] = a.Get("--filter");
  json params = json::object();
  if (a.Has("--nprobe")) params["nprobe"] = ParseUint64(a.Get("--nprobe")).value_or(0);
  if (a.Has("--ef")) params["ef"] = ParseUint64(a.Get("--ef")).value_or(0);
  if (a.Has("--radius")) params["radius"] = std::strtod(a.Get("--radius").c_str(), nullptr);
  if (a.Has("--range-filter")) {
    params["range_filter"] = std::strtod(a.Get("--range-filter").c_str(), nullptr);
  }
  body["params"] = params;
  std::vector<std::string> outputs = SplitList(a.Get("--output-fields"));
  body["output_fields"] = outputs;
  auto r = api.Call("POST", "/v1/collections/" + name + "/search", &body);
  if (!r.ok()) return Fail("search", r.status());
  if (a.Has("--json")) {
    std::printf("%s\n", r->dump().c_str());
    return 0;
  }
  int q = 0;
  for (const json& hits : (*r)["results"]) {
    std::printf("query %d:\n", q++);
    for (const json& h : hits) {
      std::printf("  id=%lld distance=%g", static_cast<long long>(h["id"].get<int64_t>()),
                  h["distance"].get<double>());
      for (const auto& [k, v] : h["fields"].items())
        std::printf(" %s=%s", k.c_str(), v.dump().c_str());
      std::printf("\n");
    }
  }
  return 0;
}

int QueryOrDeleteCmd(const std::string& cmd, const Args& a, ApiClient& api) {
  if (a.positional.empty()) {
    std::fputs(kCliHelp, stderr);
    return 2;
  }
  json body = json::object();
  if (a.Has("--ids")) {
    json ids = json::array();
    for (const std::string& x : SplitList(a.Get("--ids")))
      ids.push_back(std::strtoll(x.c_str(), nullptr, 10));
    body["ids"] = ids;
  }
  if (a.Has("--filter")) body["filter"] = a.Get("--filter");
  if (a.Has("--limit")) body["limit"] = ParseUint64(a.Get("--limit")).value_or(0);
  if (a.Has("--output-fields")) body["output_fields"] = SplitList(a.Get("--output-fields"));
  auto r = api.Call("POST", "/v1/collections/" + a.positional[0] + "/" + cmd, &body);
  if (!r.ok()) return Fail(cmd, r.status());
  std::printf("%s\n", r->dump(cmd == "query" ? -1 : 2).c_str());
  return 0;
}

}  // namespace

int RunVectorCli(const std::string& cmd, int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kCliHelp, stdout);
      return 0;
    }
  }
  auto args = ParseArgs(argc, argv, {"--auto-id", "--flush", "--no-wait", "--json", "--quiet"});
  if (!args.ok()) return Fail(cmd, args.status());
  auto api =
      ApiClient::Connect(Endpoint(*args), args->Get("--data", "./vlake-data"), CaBundle(*args));
  if (!api.ok()) return Fail(cmd, api.status());
  if (cmd == "collection") return CollectionCmd(*args, *api);
  if (cmd == "insert") return InsertCmd(*args, *api);
  if (cmd == "index") return IndexCmd(*args, *api);
  if (cmd == "search") return SearchCmd(*args, *api);
  return QueryOrDeleteCmd(cmd, *args, *api);
}

int RunVectorDb(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kVectorDbHelp, stdout);
      return 0;
    }
  }
  auto args = ParseArgs(argc, argv, {"--no-direct"});
  if (!args.ok()) return Fail("vectordb", args.status());
  const Args& a = *args;
  if (!a.Has("--s3")) {
    std::fprintf(stderr, "vlake vectordb: --s3 URL is required\n\n%s", kVectorDbHelp);
    return 2;
  }
  LogLevel level;
  if (!ParseLogLevel(a.Get("--log-level", "info"), &level)) {
    std::fprintf(stderr, "vlake vectordb: bad --log-level\n");
    return 2;
  }
  SetLogLevel(level);
  vectordb::ObjectStoreOptions so;
  so.client.endpoint = a.Get("--s3");
  so.client.ca_file = CaBundle(a);
  EnvCredentials(&so.client.access_key, &so.client.secret_key);
  so.client.access_key = a.Get("--access-key", so.client.access_key);
  so.client.secret_key = a.Get("--secret-key", so.client.secret_key);
  so.client.region = a.Get("--region", "us-east-1");
  so.client.direct = a.Has("--no-direct") ? client::DirectMode::kOff : client::DirectMode::kAuto;
  so.bucket = a.Get("--bucket", "vlake-vectordb");
  so.prefix = a.Get("--prefix");
  auto store = vectordb::ObjectStore::Open(so);
  if (!store.ok()) return Fail("vectordb", store.status());
  vectordb::EngineOptions eo;
  eo.segment_max_bytes =
      static_cast<int64_t>(ParseUint64(a.Get("--segment-max-mb", "256")).value_or(256)) << 20;
  s3::UserDirectory users;
  if (a.Has("--users")) {
    auto from_file = s3::UserDirectory::FromFile(a.Get("--users"));
    if (!from_file.ok()) return Fail("vectordb", from_file.status());
    users = std::move(*from_file);
  } else {
    const std::string& key = so.client.access_key;
    users = s3::UserDirectory({s3::User{key, so.client.secret_key, key, key}});
  }
  if (users.users().empty()) return Fail("vectordb", Status(Code::kInvalidArgument, "no users"));
  const std::string default_owner = users.users().front().user_id;
  auto engine = vectordb::VectorEngine::Open(std::move(*store), eo);
  if (!engine.ok()) return Fail("vectordb", engine.status());
  vectordb::ApiAuthenticator auth(std::move(users), default_owner);
  vectordb::VectorHttpApi api(engine->get(), &auth);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  http::ServerOptions opts;
  if (Status st = SplitHostPort(a.Get("--listen", "127.0.0.1:19530"), &opts.host, &opts.port);
      !st.ok()) {
    return Fail("vectordb", st);
  }
  opts.io_timeout_ms = 600'000;
  http::HttpServer server(opts, [&api](http::HttpRequest& req, http::BodyReader& body) {
    return api.Handle(req, body);
  });
  if (Status st = server.Start(); !st.ok()) return Fail("vectordb", st);
  std::printf("vlake vector database is serving\n");
  std::printf("  endpoint:   http://%s:%u (JSON API, docs/vectordb-api.md)\n", opts.host.c_str(),
              server.port());
  std::printf("  s3:         %s bucket %s%s\n", so.client.endpoint.c_str(), so.bucket.c_str(),
              so.prefix.empty() ? "" : (" prefix " + so.prefix).c_str());
  std::printf("  blas:       %s\n", vector::OpenBlasCoreTypeNote().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Stop();
  engine->reset();
  return 0;
}

}  // namespace vlake::app
