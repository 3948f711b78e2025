#include "s3/service.h"

#include <chrono>
#include <cstdio>
#include <unordered_map>

#include "common/encoding.h"
#include "common/log.h"
#include "s3/errors.h"
#include "s3/names.h"
#include "s3/service_internal.h"
#include "s3/sigv2.h"

namespace vlake::s3 {
namespace {

constexpr std::string_view kStoredHeaderNames[] = {"content-type",        "content-encoding",
                                                   "content-disposition", "content-language",
                                                   "cache-control",       "expires"};

// Decoded query parameters; a repeated name keeps its first value.
Status ParseQuery(std::string_view raw, RequestContext* ctx) {
  auto pairs = ParseFormPairs(raw);
  if (!pairs) return Error(Code::kInvalidArgument, "Malformed query string");
  for (auto& [name, value] : *pairs) ctx->query.emplace(std::move(name), std::move(value));
  return Status::Ok();
}

// Finds the bucket in the Host header ("<bucket>.<domain>[:port]") for virtual-host style.
std::optional<std::string> VirtualHostBucket(std::string_view host,
                                             const std::vector<std::string>& domains) {
  if (size_t colon = host.rfind(':');
      colon != std::string_view::npos && host.find(']') == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string lower = AsciiLower(host);
  for (const auto& domain : domains) {
    if (lower.size() > domain.size() + 1 && lower.ends_with(domain) &&
        lower[lower.size() - domain.size() - 1] == '.') {
      return lower.substr(0, lower.size() - domain.size() - 1);
    }
  }
  return std::nullopt;
}

Status Address(RequestContext* ctx) {
  const auto& opts = ctx->state->options;
  std::string_view path = ctx->req->path;
  if (path.empty() || path[0] != '/') return Error(Code::kInvalidRequest, "Invalid request path");
  auto vhost = VirtualHostBucket(ctx->req->HeaderOr("host", ""), opts.domains);
  std::string_view rest = path.substr(1);
  if (vhost) {
    ctx->bucket = *vhost;
    ctx->virtual_host = true;
  } else {
    size_t slash = rest.find('/');
    auto bucket = UriDecode(rest.substr(0, slash), PlusDecoding::kPlusLiteral);
    if (!bucket) return Error(Code::kInvalidRequest, "Malformed bucket in path");
    ctx->bucket = std::move(*bucket);
    if (slash == std::string_view::npos) return Status::Ok();
    rest = rest.substr(slash + 1);
    ctx->has_key = true;
  }
  if (vhost) ctx->has_key = !rest.empty();
  if (ctx->has_key) {
    auto key = UriDecode(rest, PlusDecoding::kPlusLiteral);
    if (!key) return Error(Code::kInvalidRequest, "Malformed key in path");
    ctx->key = std::move(*key);
    // "/bucket/" addresses the bucket, as S3 does.
    if (ctx->key.empty()) ctx->has_key = false;
  }
  return Status::Ok();
}

std::string MakeRequestId(S3Service::State* state) {
  uint64_t n = state->request_counter.fetch_add(1, std::memory_order_relaxed);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%010llX", state->request_id_prefix.c_str(),
                static_cast<unsigned long long>(n));
  return buf;
}

Result<http::HttpResponse> Dispatch(RequestContext& ctx) {
  VLAKE_RETURN_IF_ERROR(Address(&ctx));
  VLAKE_RETURN_IF_ERROR(ParseQuery(ctx.req->query, &ctx));

  auto& state = *ctx.state;
  AuthOptions auth_opts;
  auth_opts.now_unix_s = UnixSeconds();
  auth_opts.max_skew_s = state.options.max_skew_s;
  SecretLookup secret_for = [&](std::string_view ak) -> std::optional<std::string> {
    const User* u = state.users.FindByAccessKey(ak);
    if (!u) return std::nullopt;
    return u->secret_key;
  };
  if (IsSigV2Request(*ctx.req)) {
    std::string_view vhost_bucket = ctx.virtual_host ? std::string_view(ctx.bucket) : "";
    VLAKE_ASSIGN_OR_RETURN(ctx.auth, AuthenticateV2(*ctx.req, vhost_bucket, secret_for, auth_opts));
  } else {
    VLAKE_ASSIGN_OR_RETURN(ctx.auth, Authenticate(*ctx.req, secret_for, auth_opts));
  }
  if (ctx.auth.anonymous) {
    bool read = ctx.req->method == "GET" || ctx.req->method == "HEAD";
    if (!state.options.allow_anonymous_read || !read || ctx.bucket.empty()) {
      return Error(Code::kAccessDenied, "Anonymous access is not allowed; sign the request");
    }
  } else {
    ctx.user = state.users.FindByAccessKey(ctx.auth.access_key);
    if (!ctx.user) return Error(Code::kInvalidAccessKeyId, "");
    ctx.req->authenticated = true;
  }

  if (ctx.bucket.empty()) {
    if (ctx.req->method != "GET") return Error(Code::kMethodNotAllowed, "");
    return ListBuckets(ctx);
  }
  if (!ctx.has_key) return HandleBucket(ctx);
  VLAKE_RETURN_IF_ERROR(ValidateObjectKey(ctx.key));
  return HandleObject(ctx);
}

// The registry lookup builds label strings under a global mutex; each connection thread keeps
// the metric pointers it has seen, so the steady state costs one small hash lookup.
void RequestMetrics(MetricsRegistry* registry, const std::string& op, int status,
                    const char* status_text, Counter** counter, Histogram** histogram) {
  struct Entry {
    Counter* counter;
    Histogram* histogram;
  };
  thread_local MetricsRegistry* cached_registry = nullptr;
  thread_local std::unordered_map<std::string, Entry> cache;
  if (cached_registry != registry) {
    cache.clear();
    cached_registry = registry;
  }
  std::string key = op;
  key += '/';
  key += std::to_string(status);
  auto it = cache.find(key);
  if (it == cache.end()) {
    Entry e;
    e.counter =
        registry->GetCounter("vlake_s3_requests_total", "S3 requests by operation and status",
                             "op=\"" + op + "\",status=\"" + status_text + "\"");
    e.histogram = registry->GetHistogram("vlake_s3_request_duration_seconds",
                                         "S3 request latency by operation", "op=\"" + op + "\"");
    it = cache.emplace(std::move(key), e).first;
  }
  *counter = it->second.counter;
  *histogram = it->second.histogram;
}

http::HttpResponse OpsResponse(S3Service::State* state, std::string_view path) {
  http::HttpResponse resp;
  if (path == "/health") {
    resp.AddHeader("Content-Type", "application/json");
    resp.body = "{\"status\":\"ok\"}\n";
  } else {
    resp.AddHeader("Content-Type", "text/plain; version=0.0.4");
    resp.body = state->metrics->Render();
  }
  return resp;
}

}  // namespace

S3Service::S3Service(store::Store* store, UserDirectory users, S3Options options,
                     MetricsRegistry* metrics)
    : state_(std::make_unique<State>()) {
  state_->store = store;
  state_->users = std::move(users);
  state_->options = std::move(options);
  state_->metrics = metrics;
  state_->in_flight =
      metrics->GetGauge("vlake_s3_requests_in_flight", "S3 requests being handled right now", "");
  state_->bytes_in =
      metrics->GetCounter("vlake_s3_bytes_received_total", "Object payload bytes received", "");
  state_->bytes_out =
      metrics->GetCounter("vlake_s3_bytes_sent_total", "Response body bytes sent", "");
  state_->direct_bytes = metrics->GetCounter(
      "vlake_s3_direct_bytes_total", "Object bytes moved by the direct data path", "");
  state_->request_id_prefix = HexEncode(RandomBytes(3));
  for (char& c : state_->request_id_prefix) c = static_cast<char>(std::toupper(c));
}

S3Service::~S3Service() = default;

http::HttpResponse S3Service::Handle(http::HttpRequest& request, http::BodyReader& body) {
  auto start = std::chrono::steady_clock::now();
  RequestContext ctx;
  ctx.state = state_.get();
  ctx.req = &request;
  ctx.body = &body;
  ctx.request_id = MakeRequestId(state_.get());
  state_->in_flight->Add(1);

  http::HttpResponse resp;
  bool ops_endpoint = (request.path == "/health" || request.path == "/metrics") &&
                      request.method == "GET" && !request.FindHeader("authorization") &&
                      request.query.find("X-Amz-Signature") == std::string::npos;
  if (ops_endpoint) {
    ctx.op = request.path == "/health" ? "Health" : "Metrics";
    resp = OpsResponse(state_.get(), request.path);
  } else {
    Result<http::HttpResponse> result = Dispatch(ctx);
    if (result.ok()) {
      resp = std::move(*result);
    } else {
      const Status& st = result.error();
      S3ErrorInfo info = LookupError(st.code());
      // NotImplemented is the client asking for a feature vlake lacks, not a server fault.
      bool server_fault = info.http_status >= 500 && st.code() != Code::kNotImplemented;
      if (server_fault) {
        Log(LogLevel::kError, "request failed",
            {{"request_id", ctx.request_id}, {"op", ctx.op}, {"error", st.ToString()}});
      }
      // Internal details (paths, errno text) stay in the log, not on the wire.
      Status wire = info.http_status >= 500 && st.code() != Code::kNotImplemented
                        ? Status(st.code(), std::string())
                        : st;
      std::string resource = request.path;
      resp = ErrorResponse(wire, resource, ctx.request_id, request.method == "HEAD");
      // A failed upload may leave body bytes unread; the server closes such connections.
    }
  }
  resp.AddHeader("x-amz-request-id", ctx.request_id);
  resp.AddHeader("x-amz-id-2", ctx.request_id);
  resp.AddHeader("Server", "vlake");
  resp.AddHeader("Date", FormatHttpDate(UnixSeconds()));

  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Counter* counter = nullptr;
  Histogram* histogram = nullptr;
  char status_text[8];
  std::snprintf(status_text, sizeof(status_text), "%d", resp.status);
  RequestMetrics(state_->metrics, ctx.op, resp.status, status_text, &counter, &histogram);
  counter->Add();
  histogram->Observe(secs);
  uint64_t out_bytes = resp.omit_body ? 0 : resp.BodySize();
  state_->bytes_out->Add(out_bytes);
  state_->bytes_in->Add(ctx.bytes_in);
  state_->in_flight->Add(-1);
  bool server_fault = resp.status >= 500 && resp.status != 501;
  if (LogEnabled(LogLevel::kDebug) || server_fault) {
    char ms[32];
    std::snprintf(ms, sizeof(ms), "%.3f", secs * 1000);
    Log(server_fault ? LogLevel::kWarn : LogLevel::kDebug, "request",
        {{"request_id", ctx.request_id},
         {"op", ctx.op},
         {"method", request.method},
         {"path", request.path},
         {"status", status_text},
         {"ms", ms},
         {"peer", request.peer}});
  }
  return resp;
}

std::string RequestContext::QueryOr(std::string_view name, std::string_view fallback) const {
  auto it = query.find(name);
  return it == query.end() ? std::string(fallback) : it->second;
}

std::string QuoteEtag(std::string_view etag) {
  // Built by appends: GCC 12 at -O3 flags `"\"" + std::string(...)` with a false -Wrestrict.
  std::string out;
  out.reserve(etag.size() + 2);
  out.push_back('"');
  out.append(etag);
  out.push_back('"');
  return out;
}

std::string StripEtagQuotes(std::string_view etag) {
  etag = TrimWhitespace(etag);
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

http::HttpResponse XmlResponse(int status, std::string body) {
  http::HttpResponse resp;
  resp.status = status;
  resp.AddHeader("Content-Type", "application/xml");
  resp.body = std::move(body);
  return resp;
}

http::HttpResponse EmptyResponse(int status) {
  http::HttpResponse resp;
  resp.status = status;
  return resp;
}

store::KeyValues StoredHeadersFromRequest(const http::HttpRequest& req) {
  store::KeyValues out;
  for (std::string_view name : kStoredHeaderNames) {
    const std::string* v = req.FindHeader(name);
    if (!v) continue;
    std::string value = *v;
    if (name == "content-encoding") {
      // aws-chunked describes the transfer, not the object; S3 drops it from what it stores.
      std::string kept;
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view item = TrimWhitespace(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        if (item.empty() || EqualsIgnoreCase(item, "aws-chunked")) continue;
        if (!kept.empty()) kept += ",";
        kept += item;
      }
      if (kept.empty()) continue;
      value = kept;
    }
    out.emplace_back(std::string(name), std::move(value));
  }
  for (const auto& h : req.headers) {
    if (h.name.starts_with("x-amz-meta-")) out.emplace_back(h.name, h.value);
  }
  return out;
}

Status ValidateTags(const store::KeyValues& tags) {
  if (tags.size() > 10) return Error(Code::kInvalidTag, "Object tags cannot be greater than 10");
  for (size_t i = 0; i < tags.size(); ++i) {
    const auto& [k, v] = tags[i];
    if (k.empty() || k.size() > 128 || !IsValidUtf8(k)) {
      return Error(Code::kInvalidTag, "The TagKey you have provided is invalid");
    }
    if (v.size() > 256 || !IsValidUtf8(v)) {
      return Error(Code::kInvalidTag, "The TagValue you have provided is invalid");
    }
    for (size_t j = 0; j < i; ++j) {
      if (tags[j].first == k) {
        return Error(Code::kInvalidTag, "Cannot provide multiple Tags with the same key");
      }
    }
  }
  return Status::Ok();
}

Result<store::KeyValues> ParseTaggingHeader(std::string_view value) {
  auto tags = ParseFormPairs(value);
  if (!tags) return Error(Code::kInvalidTag, "The x-amz-tagging header is malformed");
  VLAKE_RETURN_IF_ERROR(ValidateTags(*tags));
  return std::move(*tags);
}

void AddObjectHeaders(const store::ObjectMeta& meta, http::HttpResponse* resp) {
  resp->AddHeader("ETag", QuoteEtag(meta.etag));
  resp->AddHeader("Last-Modified", FormatHttpDate(meta.mtime_unix_ms / 1000));
  resp->AddHeader("Accept-Ranges", "bytes");
  bool has_type = false;
  for (const auto& [name, value] : meta.headers) {
    if (name == "content-type") has_type = true;
    resp->AddHeader(name, value);
  }
  if (!has_type) resp->AddHeader("Content-Type", "binary/octet-stream");
  if (!meta.tags.empty()) resp->AddHeader("x-amz-tagging-count", std::to_string(meta.tags.size()));
}

Result<store::BucketInfo> AuthorizeBucket(RequestContext& ctx, bool write) {
  VLAKE_ASSIGN_OR_RETURN(store::BucketInfo info, ctx.state->store->GetBucket(ctx.bucket));
  if (ctx.user == nullptr) {
    const S3Options& o = ctx.state->options;
    if (write || !o.allow_anonymous_read ||
        (!o.private_owner_id.empty() && info.owner_id == o.private_owner_id)) {
      return Error(Code::kAccessDenied, "");
    }
    return info;
  }
  if (info.owner_id != ctx.user->user_id) return Error(Code::kAccessDenied, "");
  return info;
}

}  // namespace vlake::s3
