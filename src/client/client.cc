// The client SDK (include/vlake/client.h): pooled keep-alive HTTP connections, SigV4, the S3
// operations, and direct transfers through the UCX client plane with fallback to the body.
#include "vlake/client.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/encoding.h"
#include "common/guard.h"
#include "common/hash.h"
#include "http/client.h"
#include "http/tls.h"
#include "rdma/cuda_ipc.h"
#include "rdma/token.h"
#include "rdma/ucx_client.h"
#include "s3/sigv4.h"
#include "s3/xml.h"

namespace vlake::client {
namespace {

constexpr std::string_view kReplyHeader = "x-amz-rdma-reply";
constexpr std::string_view kBytesHeader = "x-amz-rdma-bytes-transferred";

// Bytes the server moved itself when it served the token of a GET (x-amz-rdma-reply 200/206),
// nullopt when it declined or ignored it.
std::optional<uint64_t> DirectBytes(const http::ClientResponse& resp) {
  const std::string* reply = resp.FindHeader(kReplyHeader);
  if (!reply || (*reply != "200" && *reply != "206")) return std::nullopt;
  const std::string* bytes = resp.FindHeader(kBytesHeader);
  return bytes ? ParseUint64(*bytes).value_or(0) : 0;
}

// "NoSuchKey" -> Code::kNoSuchKey: the inverse of CodeName over the closed set.
Code CodeFromS3(std::string_view s3_code, int http_status) {
  for (int c = 1; c <= static_cast<int>(Code::kEntityTooLargeHeader); ++c) {
    if (CodeName(static_cast<Code>(c)) == s3_code) return static_cast<Code>(c);
  }
  if (http_status == 404) return Code::kNotFound;
  if (http_status == 403) return Code::kAccessDenied;
  if (http_status >= 500) return Code::kUnavailable;
  return Code::kInvalidArgument;
}

Status ErrorFromResponse(const http::ClientResponse& resp, std::string_view what) {
  std::string code, message;
  if (!resp.body.empty()) {
    auto doc = s3::ParseXml(resp.body);
    if (doc.ok()) {
      if (const auto* c = doc->Child("Code")) code = c->text;
      if (const auto* m = doc->Child("Message")) message = m->text;
    }
  }
  if (code.empty()) code = "HTTP " + std::to_string(resp.status);
  return Error(CodeFromS3(code, resp.status),
               std::string(what) + ": " + code + (message.empty() ? "" : ": " + message));
}

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

std::string Crc32cHeaderValue(const char* data, uint64_t n) {
  Checksummer c(ChecksumAlgorithm::kCrc32c);
  c.Update(data, n);
  return Base64Encode(c.Final());
}

std::string RangeHeader(const ByteRange& r) {
  std::string v = "bytes=" + std::to_string(r.offset) + "-";
  if (r.length) v += std::to_string(r.offset + *r.length - 1);
  return v;
}

// "bytes a-b/total" -> total
std::optional<uint64_t> TotalFromContentRange(const std::string* v) {
  if (!v) return std::nullopt;
  size_t slash = v->rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  return ParseUint64(std::string_view(*v).substr(slash + 1));
}

class RegionImpl final : public Region {
 public:
  explicit RegionImpl(std::unique_ptr<rdma::Region> r) : r_(std::move(r)) {}
  char* data() const override { return r_->data(); }
  uint64_t size() const override { return r_->size(); }
  const rdma::Region& rdma() const { return *r_; }

 private:
  std::unique_ptr<rdma::Region> r_;
};

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(ClientOptions options) : options_(std::move(options)) {}

  Status Init() {
    std::string_view ep = options_.endpoint;
    const bool https = ep.starts_with("https://");
    if (!https && !ep.starts_with("http://")) {
      return Error(Code::kInvalidArgument,
                   "endpoint must be http://HOST:PORT or https://HOST:PORT");
    }
    ep.remove_prefix(https ? 8 : 7);
    while (ep.ends_with("/")) ep.remove_suffix(1);
    size_t colon = ep.rfind(':');
    // "[::1]" alone: the colon belongs to the address, not to a port.
    if (colon != std::string_view::npos && ep.find(']', colon) != std::string_view::npos) {
      colon = std::string_view::npos;
    }
    host_ = std::string(ep.substr(0, colon));
    port_ = https ? 443 : 80;
    if (colon != std::string_view::npos) {
      auto p = ParseUint64(ep.substr(colon + 1));
      if (!p || *p == 0 || *p > 65535) return Error(Code::kInvalidArgument, "bad endpoint port");
      port_ = static_cast<uint16_t>(*p);
    }
    if (host_.empty()) return Error(Code::kInvalidArgument, "endpoint has no host");
    host_header_ = host_ + ":" + std::to_string(port_);
    if (https) {
      VLAKE_ASSIGN_OR_RETURN(
          tls_, http::TlsContext::ForClient(options_.ca_file, options_.tls_verify
                                                                  ? http::PeerVerification::kVerify
                                                                  : http::PeerVerification::kNone));
    }
    if (options_.parallel_streams < 1) options_.parallel_streams = 1;
    if (options_.part_size_bytes < (5ull << 20)) options_.part_size_bytes = 5ull << 20;
    return Status::Ok();
  }

  // ---- plumbing ----

  struct Call {
    std::string method = "GET";
    std::string path;   // raw, encoded
    std::string query;  // raw, encoded
    std::vector<http::Header> headers;
    std::string_view body;
    std::string_view payload_hash = s3::kUnsignedPayload;
    std::function<void(const char*, size_t)> sink;
    char* dest = nullptr;  // receive a 2xx body straight into dest[0, dest_size)
    size_t dest_size = 0;
  };

  Result<http::ClientResponse> Send(Call call) {
    std::unique_ptr<http::HttpConnection> conn = Acquire();
    call.headers.push_back({"host", host_header_});
    s3::SignParams p;
    p.method = call.method;
    p.raw_path = call.path;
    p.raw_query = call.query;
    p.payload_hash = call.payload_hash;
    p.region = options_.region;
    p.now_unix_s = UnixSeconds();
    s3::SignRequest(p, {options_.access_key, options_.secret_key}, &call.headers);
    std::string target = call.path + (call.query.empty() ? "" : "?" + call.query);
    auto resp = call.dest ? conn->SendInto(call.method, target, call.headers, call.body, call.dest,
                                           call.dest_size)
                          : conn->Send(call.method, target, call.headers, call.body, call.sink);
    if (resp.ok()) Release(std::move(conn));  // a failed connection is dropped
    return resp;
  }

  std::unique_ptr<http::HttpConnection> Acquire() {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      if (!pool_.empty()) {
        auto c = std::move(pool_.back());
        pool_.pop_back();
        return c;
      }
    }
    return std::make_unique<http::HttpConnection>(host_, port_, options_.timeout_ms, tls_);
  }
  void Release(std::unique_ptr<http::HttpConnection> c) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (static_cast<int>(pool_.size()) < options_.max_connections) pool_.push_back(std::move(c));
  }

  static std::string BucketPath(std::string_view bucket) { return "/" + std::string(bucket); }
  static std::string ObjectPath(std::string_view bucket, std::string_view key) {
    return "/" + std::string(bucket) + "/" + UriEncode(key, SlashEncoding::kKeepSlash);
  }
  static std::string Q(std::string_view v) { return UriEncode(v, SlashEncoding::kEncodeSlash); }

  // ---- buckets ----

  Status CreateBucket(std::string_view bucket) override {
    Call c;
    c.method = "PUT";
    c.path = BucketPath(bucket);
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, "create bucket");
    return Status::Ok();
  }

  Status DeleteBucket(std::string_view bucket) override {
    Call c;
    c.method = "DELETE";
    c.path = BucketPath(bucket);
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 204 && resp.status != 200) return ErrorFromResponse(resp, "delete bucket");
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListBuckets() override {
    Call c;
    c.path = "/";
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, "list buckets");
    VLAKE_ASSIGN_OR_RETURN(s3::XmlElement doc, s3::ParseXml(resp.body));
    std::vector<std::string> out;
    if (const auto* buckets = doc.Child("Buckets")) {
      for (const auto* b : buckets->Children("Bucket")) {
        if (const auto* n = b->Child("Name")) out.push_back(n->text);
      }
    }
    return out;
  }

  // ---- objects ----

  static ObjectInfo InfoFrom(const http::ClientResponse& resp) {
    ObjectInfo info;
    if (const auto* v = resp.FindHeader("etag")) info.etag = Unquote(*v);
    if (const auto* v = resp.FindHeader("last-modified")) info.last_modified = *v;
    if (const auto* v = resp.FindHeader("content-type")) info.content_type = *v;
    if (auto total = TotalFromContentRange(resp.FindHeader("content-range"))) {
      info.size = *total;
    } else if (const auto* v = resp.FindHeader("content-length")) {
      info.size = ParseUint64(*v).value_or(0);
    }
    for (const auto& h : resp.headers) {
      if (h.name.starts_with("x-amz-meta-")) info.metadata[h.name.substr(11)] = h.value;
    }
    return info;
  }

  Result<ObjectInfo> Head(std::string_view bucket, std::string_view key) override {
    Call c;
    c.method = "HEAD";
    c.path = ObjectPath(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    // A HEAD reply has no error document: 404 is read as NoSuchKey (S3 does not say which).
    if (resp.status == 404) return Error(Code::kNoSuchKey, "head object: HTTP 404");
    if (resp.status != 200) return ErrorFromResponse(resp, "head object");
    return InfoFrom(resp);
  }

  Result<std::string> Get(std::string_view bucket, std::string_view key,
                          std::optional<ByteRange> range) override {
    Call c;
    c.path = ObjectPath(bucket, key);
    if (range) c.headers.push_back({"range", RangeHeader(*range)});
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200 && resp.status != 206) return ErrorFromResponse(resp, "get object");
    return std::move(resp.body);
  }

  Result<ObjectInfo> GetToSink(std::string_view bucket, std::string_view key,
                               const std::function<Status(const char*, size_t)>& sink,
                               std::optional<ByteRange> range) override {
    Call c;
    c.path = ObjectPath(bucket, key);
    if (range) c.headers.push_back({"range", RangeHeader(*range)});
    Status sink_status;
    // HttpConnection passes only 2xx bodies to the sink; error documents stay in resp.body.
    c.sink = [&](const char* p, size_t n) {
      if (sink_status.ok()) sink_status = sink(p, n);
    };
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200 && resp.status != 206) return ErrorFromResponse(resp, "get object");
    VLAKE_RETURN_IF_ERROR(sink_status);
    return InfoFrom(resp);
  }

  Result<PutResult> PutBody(std::string_view path, std::string query, std::string_view data,
                            std::string_view what) {
    Call c;
    c.method = "PUT";
    c.path = std::string(path);
    c.query = std::move(query);
    c.body = data;
    if (options_.checksum_uploads) {
      c.headers.push_back({"x-amz-checksum-crc32c", Crc32cHeaderValue(data.data(), data.size())});
    }
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, what);
    PutResult r;
    if (const auto* v = resp.FindHeader("etag")) r.etag = Unquote(*v);
    r.bytes = data.size();
    return r;
  }

  Result<PutResult> Put(std::string_view bucket, std::string_view key,
                        std::string_view data) override {
    return PutBody(ObjectPath(bucket, key), "", data, "put object");
  }

  Status Delete(std::string_view bucket, std::string_view key) override {
    Call c;
    c.method = "DELETE";
    c.path = ObjectPath(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 204 && resp.status != 200) return ErrorFromResponse(resp, "delete object");
    return Status::Ok();
  }

  Result<ListPage> List(std::string_view bucket, std::string_view prefix,
                        std::string_view delimiter, std::string_view continuation_token,
                        int max_keys) override {
    // Parameters in canonical (sorted) order.
    std::string q;
    if (!continuation_token.empty()) q += "continuation-token=" + Q(continuation_token) + "&";
    if (!delimiter.empty()) q += "delimiter=" + Q(delimiter) + "&";
    q += "list-type=2&max-keys=" + std::to_string(max_keys);
    if (!prefix.empty()) q += "&prefix=" + Q(prefix);
    Call c;
    c.path = BucketPath(bucket);
    c.query = q;
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, "list objects");
    VLAKE_ASSIGN_OR_RETURN(s3::XmlElement doc, s3::ParseXml(resp.body));
    ListPage page;
    for (const auto* o : doc.Children("Contents")) {
      ListEntry e;
      if (const auto* k = o->Child("Key")) e.key = k->text;
      if (const auto* s = o->Child("Size")) e.size = ParseUint64(s->text).value_or(0);
      if (const auto* t = o->Child("ETag")) e.etag = Unquote(t->text);
      if (const auto* m = o->Child("LastModified")) e.last_modified = m->text;
      page.objects.push_back(std::move(e));
    }
    for (const auto* p : doc.Children("CommonPrefixes")) {
      if (const auto* px = p->Child("Prefix")) page.common_prefixes.push_back(px->text);
    }
    const auto* truncated = doc.Child("IsTruncated");
    if (truncated && truncated->text == "true") {
      if (const auto* n = doc.Child("NextContinuationToken"))
        page.next_continuation_token = n->text;
    }
    return page;
  }

  // ---- multipart ----

  Result<std::string> CreateMultipartUpload(std::string_view bucket,
                                            std::string_view key) override {
    Call c;
    c.method = "POST";
    c.path = ObjectPath(bucket, key);
    c.query = "uploads=";
    if (options_.checksum_uploads) c.headers.push_back({"x-amz-checksum-algorithm", "CRC32C"});
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, "create multipart upload");
    VLAKE_ASSIGN_OR_RETURN(s3::XmlElement doc, s3::ParseXml(resp.body));
    const auto* id = doc.Child("UploadId");
    if (!id) return Error(Code::kInternal, "create multipart upload: no UploadId in reply");
    return id->text;
  }

  static std::string PartQuery(int part_number, std::string_view upload_id) {
    return "partNumber=" + std::to_string(part_number) + "&uploadId=" + Q(upload_id);
  }

  Result<PutResult> UploadPart(std::string_view bucket, std::string_view key,
                               std::string_view upload_id, int part_number,
                               std::string_view data) override {
    return PutBody(ObjectPath(bucket, key), PartQuery(part_number, upload_id), data, "upload part");
  }

  Result<PutResult> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                            std::string_view upload_id,
                                            const std::vector<CompletedPart>& parts) override {
    std::string xml = "<CompleteMultipartUpload>";
    for (const auto& p : parts) {
      xml += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>\"" +
             p.etag + "\"</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    Call c;
    c.method = "POST";
    c.path = ObjectPath(bucket, key);
    c.query = "uploadId=" + Q(upload_id);
    c.body = xml;
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 200) return ErrorFromResponse(resp, "complete multipart upload");
    // S3 may answer 200 with an error document.
    VLAKE_ASSIGN_OR_RETURN(s3::XmlElement doc, s3::ParseXml(resp.body));
    if (doc.name == "Error") return ErrorFromResponse(resp, "complete multipart upload");
    PutResult r;
    if (const auto* e = doc.Child("ETag")) r.etag = Unquote(e->text);
    return r;
  }

  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id) override {
    Call c;
    c.method = "DELETE";
    c.path = ObjectPath(bucket, key);
    c.query = "uploadId=" + Q(upload_id);
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    if (resp.status != 204 && resp.status != 200) return ErrorFromResponse(resp, "abort upload");
    return Status::Ok();
  }

  // ---- direct data path ----

  Result<rdma::ClientPlane*> Plane() {
    std::lock_guard<std::mutex> lock(plane_mu_);
    if (!plane_) {
      VLAKE_ASSIGN_OR_RETURN(plane_, rdma::ClientPlane::Create({options_.direct_transports}));
    }
    return plane_.get();
  }

  Result<std::unique_ptr<Region>> AllocateRegion(uint64_t size_bytes) override {
    VLAKE_ASSIGN_OR_RETURN(rdma::ClientPlane * plane, Plane());
    VLAKE_ASSIGN_OR_RETURN(auto r, plane->Allocate(size_bytes));
    return std::unique_ptr<Region>(new RegionImpl(std::move(r)));
  }

  Result<std::unique_ptr<Region>> RegisterRegion(void* data, uint64_t size_bytes) override {
    VLAKE_ASSIGN_OR_RETURN(rdma::ClientPlane * plane, Plane());
    VLAKE_ASSIGN_OR_RETURN(auto r, plane->Register(data, size_bytes));
    return std::unique_ptr<Region>(new RegionImpl(std::move(r)));
  }

  bool TryDirect() const {
    return options_.direct == DirectMode::kRequire ||
           (options_.direct == DirectMode::kAuto && !declined_.load());
  }
  void NoteDeclined() {
    declined_.store(true);
    active_.store(false);
  }
  bool direct_active() const override { return active_.load(); }
  std::atomic<bool> ipc_declined_{false};

  // One GET of [range] into region[region_offset, region_offset + avail).
  Result<GetResult> GetOne(std::string_view bucket, std::string_view key, const RegionImpl& region,
                           uint64_t region_offset, uint64_t avail, std::optional<ByteRange> range,
                           const std::string& if_match) {
    Call c;
    c.path = ObjectPath(bucket, key);
    if (range) c.headers.push_back({"range", RangeHeader(*range)});
    if (!if_match.empty()) c.headers.push_back({"if-match", "\"" + if_match + "\""});
    bool sent_token = TryDirect();
    if (sent_token) {
      VLAKE_ASSIGN_OR_RETURN(rdma::ClientPlane * plane, Plane());
      VLAKE_ASSIGN_OR_RETURN(std::string token,
                             plane->MakeToken(region.rdma(), region_offset, avail));
      c.headers.push_back({std::string(rdma::kTokenHeader), std::move(token)});
    }
    // A fallback body (declined, or a store without the direct path) is received straight
    // into the region too.
    c.dest = region.data() + region_offset;
    c.dest_size = avail;
    auto sent = Send(std::move(c));
    bool overflow = !sent.ok() && sent.error().code() == Code::kEntityTooLarge;
    if (!sent.ok() && !overflow) return sent.error();
    if (overflow) {
      if (sent_token) NoteDeclined();
      if (sent_token && options_.direct == DirectMode::kRequire) {
        return Error(Code::kRdmaNotSupported, "the server declined the direct transfer");
      }
      return Error(Code::kInvalidRdmaToken, "the region is smaller than the object's bytes");
    }
    http::ClientResponse& resp = *sent;
    if (resp.status != 200 && resp.status != 206) return ErrorFromResponse(resp, "get object");
    GetResult r;
    r.requests = 1;
    ObjectInfo info = InfoFrom(resp);
    r.etag = info.etag;
    r.object_size = info.size;
    if (auto moved = sent_token ? DirectBytes(resp) : std::nullopt) {
      r.bytes = *moved;
      r.direct = true;
      r.path = "direct";
      active_.store(true);
      return r;
    }
    if (sent_token) {
      NoteDeclined();
      if (options_.direct == DirectMode::kRequire) {
        return Error(Code::kRdmaNotSupported, "the server declined the direct transfer");
      }
    }
    r.bytes = resp.body_bytes;
    r.path = "http";
    return r;
  }

  Result<GetResult> GetInto(std::string_view bucket, std::string_view key, const Region& region,
                            std::optional<ByteRange> range, uint64_t region_offset) override {
    const auto& reg = static_cast<const RegionImpl&>(region);
    if (region_offset > region.size()) return Error(Code::kInvalidArgument, "offset past region");
    uint64_t avail = region.size() - region_offset;
    if (range && range->length) avail = std::min(avail, *range->length);
    if (avail <= options_.parallel_threshold_bytes || options_.parallel_streams == 1) {
      return GetOne(bucket, key, reg, region_offset, avail, range, "");
    }
    // Large: learn the size and ETag, then fetch ranges in parallel, pinned to that ETag.
    VLAKE_ASSIGN_OR_RETURN(ObjectInfo info, Head(bucket, key));
    uint64_t first = range ? range->offset : 0;
    if (first > info.size) return Error(Code::kInvalidRange, "range starts past the object");
    uint64_t total = info.size - first;
    if (range && range->length) total = std::min(total, *range->length);
    if (total > avail) {
      return Error(Code::kInvalidRdmaToken, "the region is smaller than the object's bytes");
    }
    if (total <= options_.parallel_threshold_bytes) {
      return GetOne(bucket, key, reg, region_offset, total,
                    ByteRange{first, total == 0 ? std::nullopt : std::optional(total)}, info.etag);
    }
    int streams = options_.parallel_streams;
    uint64_t piece = (total + streams - 1) / streams;
    std::vector<Result<GetResult>> results(streams, Error(Code::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < streams; ++i) {
      uint64_t off = static_cast<uint64_t>(i) * piece;
      uint64_t len = std::min(piece, total - std::min(total, off));
      if (len == 0) {
        results[i] = GetResult{};
        continue;
      }
      threads.emplace_back([&, i, off, len] {
        results[i] = GuardedCall("parallel GET", [&] {
          return GetOne(bucket, key, reg, region_offset + off, len, ByteRange{first + off, len},
                        info.etag);
        });
      });
    }
    for (auto& t : threads) t.join();
    GetResult sum;
    sum.direct = true;
    sum.etag = info.etag;
    sum.object_size = info.size;
    for (auto& r : results) {
      VLAKE_RETURN_IF_ERROR(r.status());
      sum.bytes += r->bytes;
      sum.requests += r->requests;
      sum.direct = sum.direct && (r->direct || r->bytes == 0);
    }
    sum.requests += 1;  // the HEAD
    sum.path = sum.direct ? "direct" : "http";
    return sum;
  }

  // ---- Staged GETs (GPU memory and other StagedSinks) ----

  static Status CheckStaged(const StagedGetOptions& o) {
    if (o.chunk_bytes < 4096 || o.chunk_bytes > (1ull << 30)) {
      return Error(Code::kInvalidArgument, "chunk_bytes must be 4 KiB .. 1 GiB");
    }
    if (o.fetchers < 1 || o.fetchers > 64 || o.buffers_per_fetcher < 1 ||
        o.buffers_per_fetcher > 8) {
      return Error(Code::kInvalidArgument, "fetchers must be 1..64, buffers_per_fetcher 1..8");
    }
    return Status::Ok();
  }

  // Host staging memory: a data-plane region when the direct path may be used (the server
  // writes it), else plain page-aligned memory for HTTP bodies. Attached to the sink for its
  // whole life.
  class Staging {
   public:
    Staging(StagedSink* sink, std::unique_ptr<Region> region, uint64_t bytes) : sink_(sink) {
      if (region) {
        region_ = std::move(region);
        data_ = region_->data();
      } else {
        plain_.reset(static_cast<char*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096)));
        data_ = plain_.get();
      }
      // Pinning is an optimization (DMA that overlaps the next chunk); unpinned still works.
      attached_ = data_ != nullptr && sink_->AttachStaging(data_, bytes).ok();
    }
    ~Staging() {
      if (attached_) sink_->DetachStaging(data_);
    }
    char* data() const { return data_; }
    const Region* region() const { return region_.get(); }

   private:
    struct Free {
      void operator()(char* p) const { std::free(p); }
    };
    StagedSink* sink_;
    std::unique_ptr<Region> region_;
    std::unique_ptr<char, Free> plain_;
    char* data_ = nullptr;
    bool attached_ = false;
  };

  // A 2xx body streamed through two staging slots into the sink from dst_offset on: the copy
  // of one slot overlaps filling the other.
  class BodyStager {
   public:
    BodyStager(StagedSink* sink, char* staging, uint64_t chunk)
        : sink_(sink), staging_(staging), chunk_(chunk) {}
    void Append(const char* p, size_t n) {
      while (n > 0 && status_.ok()) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(n, chunk_ - filled_));
        std::memcpy(staging_ + slot_ * chunk_ + filled_, p, take);
        filled_ += take;
        p += take;
        n -= take;
        if (filled_ == chunk_) Ship();
      }
    }
    Status Finish() {
      if (filled_ > 0 && status_.ok()) Ship();
      for (int s = 0; s < 2 && status_.ok(); ++s) status_ = sink_->Wait(s);
      return status_;
    }
    uint64_t bytes() const { return dst_; }

   private:
    void Ship() {
      if (dst_ + filled_ > sink_->size()) {
        status_ = Error(Code::kInvalidArgument, "the destination is smaller than the object");
        return;
      }
      status_ = sink_->CopyAsync(slot_, staging_ + slot_ * chunk_, dst_, filled_);
      dst_ += filled_;
      filled_ = 0;
      slot_ ^= 1;
      if (status_.ok()) status_ = sink_->Wait(slot_);  // the next slot's last copy is done
    }
    StagedSink* sink_;
    char* staging_;
    uint64_t chunk_;
    int slot_ = 0;
    uint64_t filled_ = 0;
    uint64_t dst_ = 0;
    Status status_;
  };

  // One GET whose body (if any) is staged into the sink; `token` (optional) asks the server
  // to move the bytes itself (CUDA IPC), in which case no body arrives.
  Result<GetResult> BodyIntoSink(std::string_view bucket, std::string_view key, StagedSink& sink,
                                 std::optional<ByteRange> range, uint64_t chunk,
                                 const std::string& token) {
    Staging staging(&sink, nullptr, 2 * chunk);
    if (staging.data() == nullptr) return Error(Code::kInternal, "out of memory for staging");
    BodyStager stager(&sink, staging.data(), chunk);
    Call c;
    c.path = ObjectPath(bucket, key);
    if (range) c.headers.push_back({"range", RangeHeader(*range)});
    if (!token.empty()) c.headers.push_back({std::string(rdma::kTokenHeader), token});
    c.sink = [&](const char* p, size_t n) { stager.Append(p, n); };
    VLAKE_ASSIGN_OR_RETURN(http::ClientResponse resp, Send(std::move(c)));
    if (resp.status != 200 && resp.status != 206) return ErrorFromResponse(resp, "get object");
    VLAKE_RETURN_IF_ERROR(stager.Finish());
    GetResult r;
    r.requests = 1;
    ObjectInfo info = InfoFrom(resp);
    r.etag = info.etag;
    r.object_size = info.size;
    if (auto moved = token.empty() ? std::nullopt : DirectBytes(resp)) {
      r.bytes = *moved;
      r.direct = true;
      r.path = "cuda-ipc";
      return r;
    }
    r.bytes = stager.bytes();
    r.path = "http";
    return r;
  }

  // One ranged GET of `len` bytes into plain host memory (staging without a data plane).
  Result<GetResult> GetRangeToHost(std::string_view bucket, std::string_view key, char* dest,
                                   uint64_t offset, uint64_t len, const std::string& if_match) {
    Call c;
    c.path = ObjectPath(bucket, key);
    c.headers.push_back({"range", RangeHeader(ByteRange{offset, len})});
    if (!if_match.empty()) c.headers.push_back({"if-match", "\"" + if_match + "\""});
    c.dest = dest;
    c.dest_size = len;
    VLAKE_ASSIGN_OR_RETURN(http::ClientResponse resp, Send(std::move(c)));
    if (resp.status != 200 && resp.status != 206) return ErrorFromResponse(resp, "get object");
    GetResult r;
    r.requests = 1;
    r.bytes = resp.body_bytes;
    r.path = "http";
    return r;
  }

  Result<GetResult> GetIntoSink(std::string_view bucket, std::string_view key, StagedSink& sink,
                                std::optional<ByteRange> range,
                                const StagedGetOptions& o) override {
    VLAKE_RETURN_IF_ERROR(CheckStaged(o));
    if (o.http_body) {
      VLAKE_ASSIGN_OR_RETURN(GetResult r,
                             BodyIntoSink(bucket, key, sink, range, o.chunk_bytes, ""));
      r.path = "staged-http";
      return r;
    }
    VLAKE_ASSIGN_OR_RETURN(ObjectInfo info, Head(bucket, key));
    uint64_t first = range ? range->offset : 0;
    if (first > info.size || (range && first == info.size && info.size > 0)) {
      return Error(Code::kInvalidRange, "range starts past the object");
    }
    uint64_t total = info.size - first;
    if (range && range->length) total = std::min(total, *range->length);
    if (total > sink.size()) {
      return Error(Code::kInvalidArgument, "the destination (" + std::to_string(sink.size()) +
                                               " bytes) is smaller than the " +
                                               std::to_string(total) + " bytes to fetch");
    }
    const uint64_t chunk = o.chunk_bytes;
    const uint64_t chunks = (total + chunk - 1) / chunk;
    const int fetchers =
        static_cast<int>(std::min<uint64_t>(o.fetchers, std::max<uint64_t>(chunks, 1)));
    const int per = o.buffers_per_fetcher;
    const uint64_t staging_bytes = chunk * fetchers * per;
    std::unique_ptr<Region> region;
    if (TryDirect()) {
      auto allocated = AllocateRegion(staging_bytes);
      if (allocated.ok()) {
        region = std::move(*allocated);
      } else if (options_.direct == DirectMode::kRequire) {
        return allocated.error();
      }
    }
    Staging staging(&sink, std::move(region), staging_bytes);
    if (staging.data() == nullptr) return Error(Code::kInternal, "out of memory for staging");
    std::atomic<bool> stop{false};
    std::vector<Status> errors(fetchers);
    std::vector<GetResult> sums(fetchers);
    auto fetch = [&](int f) {
      GetResult& sum = sums[f];
      sum.direct = true;
      uint64_t round = 0;
      for (uint64_t c = f; c < chunks && !stop.load(); c += fetchers, ++round) {
        int slot = f * per + static_cast<int>(round % per);
        uint64_t off = c * chunk;
        uint64_t len = std::min(chunk, total - off);
        // The slot's buffer is refilled only after its previous copy completed.
        Status st = sink.Wait(slot);
        Result<GetResult> got = Error(Code::kInternal, "not run");
        if (st.ok()) {
          uint64_t at = static_cast<uint64_t>(slot) * chunk;
          got = staging.region()
                    ? GetOne(bucket, key, static_cast<const RegionImpl&>(*staging.region()), at,
                             len, ByteRange{first + off, len}, info.etag)
                    : GetRangeToHost(bucket, key, staging.data() + at, first + off, len, info.etag);
          if (got.ok() && got->bytes != len) {
            got = Error(Code::kInternal, "a ranged GET returned " + std::to_string(got->bytes) +
                                             " bytes instead of " + std::to_string(len));
          }
          if (got.ok())
            st = sink.CopyAsync(slot, staging.data() + at, off, len);
          else
            st = got.status();
        }
        if (!st.ok()) {
          errors[f] = st;
          stop.store(true);
          return;
        }
        sum.bytes += len;
        sum.requests += got->requests;
        sum.direct = sum.direct && got->direct;
      }
    };
    std::vector<std::thread> threads;
    auto guarded_fetch = [&](int f) {
      Status st = GuardedCall("staged GET", [&] {
        fetch(f);
        return Status::Ok();
      });
      if (!st.ok()) {
        errors[f] = st;
        stop.store(true);
      }
    };
    for (int f = 1; f < fetchers; ++f) threads.emplace_back(guarded_fetch, f);
    guarded_fetch(0);
    for (auto& t : threads) t.join();
    Status waited;
    for (int slot = 0; slot < fetchers * per; ++slot) {
      Status w = sink.Wait(slot);
      if (waited.ok()) waited = w;
    }
    for (const Status& e : errors) VLAKE_RETURN_IF_ERROR(e);
    VLAKE_RETURN_IF_ERROR(waited);
    GetResult out;
    out.etag = info.etag;
    out.object_size = info.size;
    out.requests = 1;  // the HEAD
    out.direct = chunks > 0;
    for (const GetResult& g : sums) {
      out.bytes += g.bytes;
      out.requests += g.requests;
      out.direct = out.direct && g.direct;
    }
    out.path = out.direct ? "staged-direct" : "staged-http";
    return out;
  }

  Result<GetResult> GetIntoDevice(std::string_view bucket, std::string_view key, void* device_ptr,
                                  uint64_t size_bytes, std::optional<ByteRange> range,
                                  const DeviceGetOptions& o) override {
    VLAKE_RETURN_IF_ERROR(CheckStaged(o.staged));
    int slots = o.path == DevicePath::kStaged || o.path == DevicePath::kAuto
                    ? o.staged.fetchers * o.staged.buffers_per_fetcher
                    : 2;
    slots = std::max(slots, 2);
    VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<StagedSink> sink,
                           MakeCudaSink(device_ptr, size_bytes, slots));
    bool try_ipc = o.path == DevicePath::kCudaIpc ||
                   (o.path == DevicePath::kAuto && options_.direct != DirectMode::kOff &&
                    !ipc_declined_.load());
    if (try_ipc) {
      auto token = rdma::ExportCudaIpc(device_ptr, size_bytes, o.ipc_token_ttl_ms);
      if (!token.ok() && o.path == DevicePath::kCudaIpc) return token.error();
      if (token.ok()) {
        // Declined (another host, or a server without a GPU): the body arrives instead and
        // is staged, and later kAuto calls go straight to the staged path.
        VLAKE_ASSIGN_OR_RETURN(GetResult r,
                               BodyIntoSink(bucket, key, *sink, range, o.staged.chunk_bytes,
                                            rdma::EncodeCudaIpcToken(*token)));
        if (r.path != "cuda-ipc") {
          ipc_declined_.store(true);
          if (o.path == DevicePath::kCudaIpc) {
            return Error(Code::kRdmaNotSupported, "the server declined the CUDA IPC transfer");
          }
        }
        return r;
      }
    }
    StagedGetOptions staged = o.staged;
    staged.http_body = o.path == DevicePath::kHttpBody;
    return GetIntoSink(bucket, key, *sink, range, staged);
  }

  // One direct PUT (object or part) of region bytes; falls back to the body when declined.
  Result<PutResult> PutOne(std::string_view path, std::string query, const RegionImpl& region,
                           uint64_t region_offset, uint64_t length, std::string_view what) {
    std::string_view bytes(region.data() + region_offset, length);
    if (!TryDirect()) return PutBody(path, std::move(query), bytes, what);
    VLAKE_ASSIGN_OR_RETURN(rdma::ClientPlane * plane, Plane());
    VLAKE_ASSIGN_OR_RETURN(std::string token,
                           plane->MakeToken(region.rdma(), region_offset, length));
    Call c;
    c.method = "PUT";
    c.path = std::string(path);
    c.query = query;
    c.headers.push_back({std::string(rdma::kTokenHeader), std::move(token)});
    if (options_.checksum_uploads) {
      c.headers.push_back({"x-amz-checksum-crc32c", Crc32cHeaderValue(bytes.data(), length)});
    }
    VLAKE_ASSIGN_OR_RETURN(auto resp, Send(std::move(c)));
    const std::string* reply = resp.FindHeader(kReplyHeader);
    if (resp.status == 200 && reply && *reply == "200") {
      PutResult r;
      if (const auto* v = resp.FindHeader("etag")) r.etag = Unquote(*v);
      r.bytes = length;
      r.direct = true;
      active_.store(true);
      return r;
    }
    // Declined (501), or 200 without x-amz-rdma-reply: a store that ignored the token and
    // stored an empty body. Either way the body path (re)writes it.
    bool declined = resp.status == 501 || (resp.status == 200 && !reply);
    if (!declined) return ErrorFromResponse(resp, what);
    NoteDeclined();
    if (options_.direct == DirectMode::kRequire) {
      return Error(Code::kRdmaNotSupported, "the server declined the direct transfer");
    }
    return PutBody(path, std::move(query), bytes, what);
  }

  Result<PutResult> UploadPartFrom(std::string_view bucket, std::string_view key,
                                   std::string_view upload_id, int part_number,
                                   const Region& region, uint64_t length,
                                   uint64_t region_offset) override {
    if (region_offset > region.size() || length > region.size() - region_offset) {
      return Error(Code::kInvalidArgument, "range outside the region");
    }
    return PutOne(ObjectPath(bucket, key), PartQuery(part_number, upload_id),
                  static_cast<const RegionImpl&>(region), region_offset, length, "upload part");
  }

  Result<PutResult> PutFrom(std::string_view bucket, std::string_view key, const Region& region,
                            uint64_t length, uint64_t region_offset) override {
    const auto& reg = static_cast<const RegionImpl&>(region);
    if (region_offset > region.size() || length > region.size() - region_offset) {
      return Error(Code::kInvalidArgument, "range outside the region");
    }
    if (length <= options_.parallel_threshold_bytes) {
      return PutOne(ObjectPath(bucket, key), "", reg, region_offset, length, "put object");
    }
    VLAKE_ASSIGN_OR_RETURN(std::string upload_id, CreateMultipartUpload(bucket, key));
    uint64_t part = options_.part_size_bytes;
    int parts = static_cast<int>((length + part - 1) / part);
    if (parts > 10000) return Error(Code::kInvalidArgument, "more than 10000 parts");
    std::vector<Result<PutResult>> results(parts, Error(Code::kInternal, "not run"));
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < std::min(options_.parallel_streams, parts); ++t) {
      threads.emplace_back([&] {
        for (int i; (i = next.fetch_add(1)) < parts;) {
          uint64_t off = static_cast<uint64_t>(i) * part;
          results[i] = GuardedCall("parallel part upload", [&] {
            return UploadPartFrom(bucket, key, upload_id, i + 1, region,
                                  std::min(part, length - off), region_offset + off);
          });
        }
      });
    }
    for (auto& t : threads) t.join();
    std::vector<CompletedPart> done;
    bool all_direct = true;
    for (int i = 0; i < parts; ++i) {
      if (!results[i].ok()) {
        (void)AbortMultipartUpload(bucket, key, upload_id);
        return results[i].error();
      }
      done.push_back({i + 1, results[i]->etag});
      all_direct = all_direct && results[i]->direct;
    }
    VLAKE_ASSIGN_OR_RETURN(PutResult r, CompleteMultipartUpload(bucket, key, upload_id, done));
    r.bytes = length;
    r.direct = all_direct;
    return r;
  }

 private:
  ClientOptions options_;
  std::string host_;
  uint16_t port_ = 0;
  std::string host_header_;
  std::shared_ptr<const http::TlsContext> tls_;  // https endpoints only
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<http::HttpConnection>> pool_;  // guarded by pool_mu_
  std::mutex plane_mu_;
  std::unique_ptr<rdma::ClientPlane> plane_;  // created on first direct use
  std::atomic<bool> declined_{false};
  std::atomic<bool> active_{false};
};

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  auto c = std::make_unique<ClientImpl>(options);
  VLAKE_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Client>(std::move(c));
}

}  // namespace vlake::client

namespace vlake::client {
namespace {

// StagedSink over CUDA device memory (rdma::DeviceCopyTarget: a stream and an event per slot).
class CudaSink final : public StagedSink {
 public:
  explicit CudaSink(std::unique_ptr<rdma::DeviceCopyTarget> target) : target_(std::move(target)) {}
  uint64_t size() const override { return target_->size(); }
  Status AttachStaging(char* data, uint64_t size_bytes) override {
    return target_->Pin(data, size_bytes);
  }
  void DetachStaging(char* data) override { target_->Unpin(data); }
  Status CopyAsync(int slot, const char* src, uint64_t dst_offset, uint64_t n) override {
    return target_->CopyAsync(slot, src, dst_offset, n);
  }
  Status Wait(int slot) override { return target_->Wait(slot); }

 private:
  std::unique_ptr<rdma::DeviceCopyTarget> target_;
};

}  // namespace

Result<std::unique_ptr<StagedSink>> MakeCudaSink(void* device_ptr, uint64_t size_bytes, int slots) {
  VLAKE_ASSIGN_OR_RETURN(auto target,
                         rdma::DeviceCopyTarget::Create(device_ptr, size_bytes, slots));
  return std::unique_ptr<StagedSink>(new CudaSink(std::move(target)));
}

}  // namespace vlake::client
