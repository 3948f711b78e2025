// Internals shared by the S3 operation files (bucket_ops.cc, object_ops.cc,
// multipart_ops.cc): the per-request context and helpers. Not a public header.
//
// Thread-safety: a RequestContext belongs to one request on one thread; State is shared and
// immutable apart from its atomic metrics.
#pragma once

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/hash.h"
#include "common/metrics.h"
#include "http/body.h"
#include "http/request.h"
#include "rdma/replay_guard.h"
#include "rdma/token.h"
#include "s3/service.h"
#include "s3/sigv4.h"
#include "s3/users.h"
#include "store/store.h"

namespace vlake::s3 {

struct S3Service::State {
  store::Store* store;
  UserDirectory users;
  S3Options options;
  MetricsRegistry* metrics;
  Gauge* in_flight;
  Counter* bytes_in;
  Counter* bytes_out;
  std::atomic<uint64_t> request_counter{0};
  std::string request_id_prefix;
  rdma::ReplayGuard replay_guard;  // nonces of accepted direct-path tokens
  Counter* direct_bytes = nullptr;
};

struct RequestContext {
  S3Service::State* state = nullptr;
  http::HttpRequest* req = nullptr;
  http::BodyReader* body = nullptr;
  std::string request_id;
  std::string bucket;  // empty for service-level requests
  std::string key;     // decoded; empty for bucket-level requests
  bool has_key = false;
  bool virtual_host = false;                              // the bucket came from the Host header
  std::map<std::string, std::string, std::less<>> query;  // decoded parameters
  AuthResult auth;
  const User* user = nullptr;  // null when anonymous
  std::string op = "Unknown";  // operation name for metrics and logs
  uint64_t bytes_in = 0;

  bool HasQuery(std::string_view name) const { return query.count(name) > 0; }
  std::string QueryOr(std::string_view name, std::string_view fallback) const;
  const std::string* Header(std::string_view lower_name) const {
    return req->FindHeader(lower_name);
  }
  std::string_view HeaderOr(std::string_view lower_name, std::string_view fallback) const {
    return req->HeaderOr(lower_name, fallback);
  }
  bool is_head() const { return req->method == "HEAD"; }
  std::string owner_id() const { return user ? user->user_id : std::string(); }
};

// Dispatch targets; each returns the success response or an error Status.
Result<http::HttpResponse> ListBuckets(RequestContext& ctx);
Result<http::HttpResponse> HandleBucket(RequestContext& ctx);
Result<http::HttpResponse> HandleObject(RequestContext& ctx);

// Checks the bucket exists and the caller may use it (owner, or anonymous read when allowed).
Result<store::BucketInfo> AuthorizeBucket(RequestContext& ctx, bool write);

// Multipart operations (multipart_ops.cc), reached from HandleBucket/HandleObject.
Result<http::HttpResponse> CreateMultipartUpload(RequestContext& ctx);
Result<http::HttpResponse> UploadPart(RequestContext& ctx);
Result<http::HttpResponse> UploadPartCopy(RequestContext& ctx);
Result<http::HttpResponse> CompleteMultipartUpload(RequestContext& ctx);
Result<http::HttpResponse> AbortMultipartUpload(RequestContext& ctx);
Result<http::HttpResponse> ListParts(RequestContext& ctx);
Result<http::HttpResponse> ListMultipartUploads(RequestContext& ctx);

// ---- Payload ingestion (payload.cc) ----

// What the request says about its body's integrity, gathered before reading it.
struct PayloadChecks {
  std::optional<std::string> content_md5;        // raw 16 bytes
  std::optional<ChecksumAlgorithm> algorithm;    // x-amz-checksum-* / trailer / sdk algorithm
  std::optional<std::string> checksum_expected;  // raw digest when sent as a header
  bool checksum_in_trailer = false;
  std::optional<uint64_t> decoded_length;  // x-amz-decoded-content-length
};

Result<PayloadChecks> ParsePayloadChecks(RequestContext& ctx);

struct IngestResult {
  uint64_t size = 0;
  std::string md5;                               // raw 16 bytes
  std::optional<store::ChecksumValue> checksum;  // full-object value when an algorithm applied
};

// Streams the request body into `sink` (a blob writer, or null to keep it in `*memory`),
// decoding aws-chunked framing and verifying x-amz-content-sha256, Content-MD5 and
// x-amz-checksum-* (header or trailer). Any failure leaves nothing committed: the caller
// drops the blob. `max_bytes` bounds the decoded size (EntityTooLarge).
Result<IngestResult> IngestBody(RequestContext& ctx, const PayloadChecks& checks,
                                store::BlobWriter* sink, std::string* memory, uint64_t max_bytes);

// Reads a small body (XML requests) fully, with the same verification.
Result<std::string> ReadSmallBody(RequestContext& ctx, size_t limit_bytes, bool require_digest);

// ---- Direct data path (direct.cc) ----

// A request carrying x-amz-rdma-token.
struct DirectRequest {
  rdma::Token token;
  bool served = false;  // the engine moves data for it (a vlake1 token); else it is declined
};

// Reads x-amz-rdma-token: nullopt when absent. AccessDenied when the header is not covered by
// the signature, InvalidRDMAToken when malformed.
Result<std::optional<DirectRequest>> ParseDirect(const RequestContext& ctx);

// GET: moves the response's file slices (`length` bytes) into the client's region and turns
// `resp` into the empty direct reply (x-amz-rdma-reply, x-amz-rdma-bytes-transferred).
Status DirectGet(RequestContext& ctx, const DirectRequest& direct, uint64_t length,
                 http::HttpResponse* resp);

// PUT / UploadPart payload into `sink`: the body (IngestBody), or, with a token, the client's
// region after checking the request shape (no body, unsigned or empty-hash payload), with the
// same verification and hashing as a body.
Result<IngestResult> IngestPayload(RequestContext& ctx, const std::optional<DirectRequest>& direct,
                                   const PayloadChecks& checks, store::BlobWriter* sink);

// Adds the headers of a direct reply for PUT / UploadPart.
void AddDirectPutHeaders(uint64_t bytes, http::HttpResponse* resp);

// ---- Copies (copy.cc) ----

struct CopySource {
  std::string bucket;
  std::string key;
};

// Parses x-amz-copy-source ("[/]bucket/key[?versionId=null]", URL-encoded).
Result<CopySource> ParseCopySource(const RequestContext& ctx);
// Opens the source after checking the caller may read its bucket.
Result<store::ObjectHandle> OpenCopySource(RequestContext& ctx, const CopySource& source);
// Copies [first, first+length) of `src` into `sink`, computing MD5 and, when `algorithm` is
// set, that checksum. Memory stays bounded (one buffer).
Result<IngestResult> CopyObjectRange(const store::ObjectHandle& src, uint64_t first,
                                     uint64_t length, std::optional<ChecksumAlgorithm> algorithm,
                                     store::BlobWriter* sink);

// If-None-Match: * / If-Match of PutObject, CopyObject and CompleteMultipartUpload.
Result<store::WriteConditions> WriteConditionsFromRequest(const RequestContext& ctx);

// A minimal ACL naming the bucket owner with FULL_CONTROL (clients like s3cmd read it).
http::HttpResponse OwnerAclResponse(const RequestContext& ctx);

// ---- Small helpers (service.cc) ----
std::string QuoteEtag(std::string_view etag);
std::string StripEtagQuotes(std::string_view etag);
http::HttpResponse XmlResponse(int status, std::string body);
http::HttpResponse EmptyResponse(int status);
// The headers stored with an object from a PUT/Copy/CreateMultipartUpload request.
store::KeyValues StoredHeadersFromRequest(const http::HttpRequest& req);
// Parses x-amz-tagging ("k1=v1&k2=v2"); kInvalidTag on violations.
Result<store::KeyValues> ParseTaggingHeader(std::string_view value);
Status ValidateTags(const store::KeyValues& tags);
// Adds ETag, Last-Modified, Content-Type etc. of `meta` to `resp`.
void AddObjectHeaders(const store::ObjectMeta& meta, http::HttpResponse* resp);

}  // namespace vlake::s3
