// Fuzzes the vector database's JSON API (src/vectordb/http_api.cc) end to end over an engine
// on an in-memory object store: collection creation (schemas), inserts (JSON rows), searches,
// queries, deletes by filter, describe. The first input byte picks the operation, the next
// picks the credentials (valid, wrong, none), the rest is the body.
//
// Properties: no crash or sanitizer report; every reply has a status in 200..599, a JSON body,
// and errors carry {"error":{"code","message"}}; a 2xx never comes for bad credentials.
// Index builds and compaction are left out (their cost depends on the data, not the parser).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "http/body.h"
#include "vectordb/api_auth.h"
#include "vectordb/engine.h"
#include "vectordb/http_api.h"
#include "vectordb/object_store_testing.h"

namespace {

using namespace vlake;

constexpr char kKey[] = "AKIDFUZZ000000000001";
constexpr char kSecret[] = "fuzz-secret-0123456789";

struct World {
  std::unique_ptr<vectordb::VectorEngine> engine;
  std::unique_ptr<vectordb::ApiAuthenticator> auth;
  std::unique_ptr<vectordb::VectorHttpApi> api;
  int64_t runs = 0;
};

void Reset(World* w) {
  w->api.reset();
  w->engine.reset();
  auto engine = vectordb::VectorEngine::Open(std::make_unique<vectordb::MemoryObjectStore>());
  if (!engine.ok()) std::abort();
  w->engine = std::move(*engine);
  if (!w->auth) {
    w->auth = std::make_unique<vectordb::ApiAuthenticator>(
        s3::UserDirectory({s3::User{kKey, kSecret, "fuzzer", "fuzzer"}}), "fuzzer");
  }
  w->api = std::make_unique<vectordb::VectorHttpApi>(w->engine.get(), w->auth.get());
  // A collection with every field type for inserts, searches and filters to land on.
  http::HttpRequest req;
  req.method = "POST";
  req.path = req.target = "/v1/collections";
  req.headers.push_back({"authorization", std::string("Bearer ") + kKey + ":" + kSecret});
  http::StringBodyReader body(
      R"({"name":"f","dim":4,"fields":[{"name":"price","type":"double"},)"
      R"({"name":"qty","type":"int64"},{"name":"ok","type":"bool"},)"
      R"({"name":"color","type":"varchar"}]})");
  if (w->api->Handle(req, body).status != 201) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = [] {
    auto* w = new World();
    Reset(w);
    return w;
  }();
  if (size < 2) return 0;
  // Bounded memory: start over now and then (inserts accumulate rows).
  if (++world->runs % 500 == 0) Reset(world);
  static const char* const kOps[][2] = {
      {"POST", "/v1/collections"},          {"POST", "/v1/collections/f/insert"},
      {"POST", "/v1/collections/f/search"}, {"POST", "/v1/collections/f/query"},
      {"POST", "/v1/collections/f/delete"}, {"GET", "/v1/collections/f"},
      {"GET", "/v1/collections"},           {"GET", "/v1/jobs/job-000001"},
  };
  const auto& op = kOps[data[0] % (sizeof(kOps) / sizeof(kOps[0]))];
  const int creds = data[1] % 3;
  http::HttpRequest req;
  req.method = op[0];
  req.path = req.target = op[1];
  req.headers.push_back({"content-type", "application/json"});
  if (creds == 0) {
    req.headers.push_back({"authorization", std::string("Bearer ") + kKey + ":" + kSecret});
  } else if (creds == 1) {
    req.headers.push_back({"authorization", std::string("Bearer ") + kKey + ":wrong"});
  }
  http::StringBodyReader body(std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
  http::HttpResponse resp = world->api->Handle(req, body);
  if (resp.status < 200 || resp.status > 599) std::abort();
  if (creds != 0 && resp.status < 300) std::abort();  // bad credentials never succeed
  nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) std::abort();
  if (resp.status >= 400 && !(j.contains("error") && j["error"].contains("code"))) std::abort();
  // A collection the fuzzer created goes again, so names do not pile up.
  if (op[1] == std::string("/v1/collections") && resp.status == 201 && j.contains("created")) {
    http::HttpRequest drop;
    drop.method = "DELETE";
    drop.path = drop.target = "/v1/collections/" + j["created"].get<std::string>();
    drop.headers.push_back({"authorization", std::string("Bearer ") + kKey + ":" + kSecret});
    http::StringBodyReader empty("");
    (void)world->api->Handle(drop, empty);
  }
  return 0;
}
