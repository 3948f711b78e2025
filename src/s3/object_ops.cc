// Object-level operations: Put/Get/Head/Delete/Copy and tagging.
#include <memory>
#include <string>

#include "common/encoding.h"
#include "s3/names.h"
#include "s3/service_internal.h"
#include "s3/xml.h"

namespace vlake::s3 {
namespace {

constexpr std::pair<std::string_view, std::string_view> kResponseOverrides[] = {
    {"response-content-type", "Content-Type"},
    {"response-content-language", "Content-Language"},
    {"response-expires", "Expires"},
    {"response-cache-control", "Cache-Control"},
    {"response-content-disposition", "Content-Disposition"},
    {"response-content-encoding", "Content-Encoding"}};

bool EtagMatches(std::string_view header, std::string_view etag) {
  // A list of entity tags, or "*".
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = TrimWhitespace(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (item == "*" || StripEtagQuotes(item) == etag) return true;
  }
  return false;
}

// Evaluates If-Match / If-Unmodified-Since (412) and If-None-Match / If-Modified-Since (304)
// with RFC 9110 precedence, as S3 does. `prefix` selects "" or "x-amz-copy-source-".
Status EvaluateConditions(const RequestContext& ctx, const store::ObjectMeta& meta,
                          std::string_view prefix, bool copy_source) {
  auto header = [&](std::string_view name) {
    return ctx.req->FindHeader(std::string(prefix) + std::string(name));
  };
  int64_t mtime_s = meta.mtime_unix_ms / 1000;
  const std::string* if_match = header("if-match");
  const std::string* if_none_match = header("if-none-match");
  if (if_match) {
    if (!EtagMatches(*if_match, meta.etag)) return Error(Code::kPreconditionFailed, "");
  } else if (const std::string* ius = header("if-unmodified-since")) {
    auto t = ParseHttpDate(*ius);
    if (t && mtime_s > *t) return Error(Code::kPreconditionFailed, "");
  }
  Code not_modified = copy_source ? Code::kPreconditionFailed : Code::kNotModified;
  if (if_none_match) {
    if (EtagMatches(*if_none_match, meta.etag)) return Error(not_modified, "");
  } else if (const std::string* ims = header("if-modified-since")) {
    auto t = ParseHttpDate(*ims);
    if (t && mtime_s <= *t && !(copy_source && if_match)) return Error(not_modified, "");
  }
  return Status::Ok();
}

void AddChecksumHeaders(const store::ChecksumValue& c, http::HttpResponse* resp) {
  resp->AddHeader(std::string(ChecksumHeaderName(c.algorithm)), c.value);
  resp->AddHeader("x-amz-checksum-type",
                  c.type == store::ChecksumType::kComposite ? "COMPOSITE" : "FULL_OBJECT");
}

Result<http::HttpResponse> PutObject(RequestContext& ctx) {
  ctx.op = "PutObject";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_ASSIGN_OR_RETURN(store::WriteConditions cond, WriteConditionsFromRequest(ctx));
  store::ObjectMeta meta;
  if (const std::string* tagging = ctx.Header("x-amz-tagging")) {
    VLAKE_ASSIGN_OR_RETURN(meta.tags, ParseTaggingHeader(*tagging));
  }
  VLAKE_ASSIGN_OR_RETURN(PayloadChecks checks, ParsePayloadChecks(ctx));
  VLAKE_ASSIGN_OR_RETURN(std::optional<DirectRequest> direct, ParseDirect(ctx));
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobWriter> blob, ctx.state->store->NewBlob());
  VLAKE_ASSIGN_OR_RETURN(IngestResult in, IngestPayload(ctx, direct, checks, blob.get()));
  meta.etag = HexEncode(in.md5);
  meta.owner_id = ctx.owner_id();
  meta.headers = StoredHeadersFromRequest(*ctx.req);
  meta.checksum = in.checksum;
  VLAKE_ASSIGN_OR_RETURN(
      store::ObjectMeta stored,
      ctx.state->store->PutObject(ctx.bucket, ctx.key, std::move(blob), std::move(meta), cond));
  http::HttpResponse resp;
  resp.AddHeader("ETag", QuoteEtag(stored.etag));
  if (stored.checksum) AddChecksumHeaders(*stored.checksum, &resp);
  if (direct) AddDirectPutHeaders(in.size, &resp);
  return resp;
}

Result<http::HttpResponse> GetOrHeadObject(RequestContext& ctx) {
  bool head = ctx.is_head();
  ctx.op = head ? "HeadObject" : "GetObject";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
  std::optional<DirectRequest> direct;
  if (!head) {
    VLAKE_ASSIGN_OR_RETURN(direct, ParseDirect(ctx));
  }
  store::ObjectHandle handle;
  if (head) {
    VLAKE_ASSIGN_OR_RETURN(handle.meta, ctx.state->store->HeadObject(ctx.bucket, ctx.key));
  } else {
    VLAKE_ASSIGN_OR_RETURN(handle, ctx.state->store->OpenObject(ctx.bucket, ctx.key));
  }
  const store::ObjectMeta& meta = handle.meta;
  Status cond = EvaluateConditions(ctx, meta, "", false);
  if (cond.code() == Code::kNotModified) {
    http::HttpResponse resp;
    resp.status = 304;
    resp.omit_body = true;
    resp.AddHeader("ETag", QuoteEtag(meta.etag));
    resp.AddHeader("Last-Modified", FormatHttpDate(meta.mtime_unix_ms / 1000));
    return resp;
  }
  VLAKE_RETURN_IF_ERROR(cond);

  http::HttpResponse resp;
  AddObjectHeaders(meta, &resp);
  uint64_t first = 0, length = meta.size;
  bool partial = false;
  const std::string* range = ctx.Header("range");
  std::optional<size_t> part_index;
  if (ctx.HasQuery("partNumber")) {
    if (range) {
      return Error(Code::kInvalidRequest,
                   "Cannot specify both Range header and partNumber query parameter");
    }
    auto n = ParseUint64(ctx.QueryOr("partNumber", ""));
    if (!n || *n < 1 || *n > static_cast<uint64_t>(store::kMaxPartNumber)) {
      return Error(Code::kInvalidArgument,
                   "Part number must be an integer between 1 and 10000, inclusive");
    }
    size_t parts = meta.parts.empty() ? 1 : meta.parts.size();
    if (*n > parts) return Error(Code::kInvalidPartNumber, "");
    if (!meta.parts.empty()) {
      part_index = *n - 1;
      first = 0;
      for (size_t i = 0; i < *part_index; ++i) first += meta.parts[i].size;
      length = meta.parts[*part_index].size;
      resp.AddHeader("x-amz-mp-parts-count", std::to_string(meta.parts.size()));
    }
    partial = true;
  } else if (range) {
    ByteRange r;
    switch (ResolveRange(*range, meta.size, &r)) {
      case RangeOutcome::kIgnore:
        break;
      case RangeOutcome::kUnsatisfiable: {
        resp = {};
        return Error(Code::kInvalidRange, "The requested range is not satisfiable");
      }
      case RangeOutcome::kSatisfiable:
        first = r.first;
        length = r.length;
        partial = true;
        break;
    }
  }
  if (partial) {
    resp.status = 206;
    if (meta.size > 0) {
      resp.AddHeader("Content-Range", "bytes " + std::to_string(first) + "-" +
                                          std::to_string(first + length - 1) + "/" +
                                          std::to_string(meta.size));
    }
  }
  if (EqualsIgnoreCase(ctx.HeaderOr("x-amz-checksum-mode", ""), "ENABLED") && meta.checksum) {
    if (!partial || (meta.parts.empty() && length == meta.size)) {
      AddChecksumHeaders(*meta.checksum, &resp);
    } else if (part_index && !meta.parts[*part_index].checksum.empty()) {
      store::ChecksumValue part{meta.checksum->algorithm, store::ChecksumType::kFullObject,
                                meta.parts[*part_index].checksum};
      AddChecksumHeaders(part, &resp);
    }
  }
  for (const auto& [param, header] : kResponseOverrides) {
    auto it = ctx.query.find(param);
    if (it == ctx.query.end()) continue;
    for (auto h = resp.headers.begin(); h != resp.headers.end();) {
      h = EqualsIgnoreCase(h->name, header) ? resp.headers.erase(h) : h + 1;
    }
    resp.AddHeader(std::string(header), it->second);
  }
  if (head) {
    resp.omit_body = true;
    resp.AddHeader("Content-Length", std::to_string(length));
    return resp;
  }
  // Map [first, first+length) onto the extents' files.
  uint64_t skip = first, left = length;
  for (const auto& ext : handle.extents) {
    if (left == 0) break;
    if (skip >= ext.size) {
      skip -= ext.size;
      continue;
    }
    uint64_t take = std::min(ext.size - skip, left);
    resp.file_slices.push_back({ext.fd, skip, take});
    left -= take;
    skip = 0;
  }
  if (left != 0) return Error(Code::kInternal, "object extents shorter than its size");
  if (direct) VLAKE_RETURN_IF_ERROR(DirectGet(ctx, *direct, length, &resp));
  return resp;
}

Result<http::HttpResponse> DeleteObject(RequestContext& ctx) {
  ctx.op = "DeleteObject";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_RETURN_IF_ERROR(ctx.state->store->DeleteObject(ctx.bucket, ctx.key));
  return EmptyResponse(204);
}

Result<http::HttpResponse> CopyObject(RequestContext& ctx) {
  ctx.op = "CopyObject";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_ASSIGN_OR_RETURN(CopySource source, ParseCopySource(ctx));
  VLAKE_ASSIGN_OR_RETURN(store::ObjectHandle src, OpenCopySource(ctx, source));
  VLAKE_RETURN_IF_ERROR(EvaluateConditions(ctx, src.meta, "x-amz-copy-source-", true));

  std::string directive = std::string(ctx.HeaderOr("x-amz-metadata-directive", "COPY"));
  std::string tag_directive = std::string(ctx.HeaderOr("x-amz-tagging-directive", "COPY"));
  if (directive != "COPY" && directive != "REPLACE") {
    return Error(Code::kInvalidArgument, "Unknown metadata directive.");
  }
  if (tag_directive != "COPY" && tag_directive != "REPLACE") {
    return Error(Code::kInvalidArgument, "Unknown tagging directive.");
  }
  bool self = source.bucket == ctx.bucket && source.key == ctx.key;
  if (self && directive == "COPY" && tag_directive == "COPY" &&
      !ctx.Header("x-amz-checksum-algorithm")) {
    return Error(Code::kInvalidRequest,
                 "This copy request is illegal because it is trying to copy an object to itself "
                 "without changing the object's metadata, storage class, website redirect "
                 "location or encryption attributes.");
  }
  store::ObjectMeta meta;
  meta.owner_id = ctx.owner_id();
  meta.headers = directive == "COPY" ? src.meta.headers : StoredHeadersFromRequest(*ctx.req);
  if (tag_directive == "COPY") {
    meta.tags = src.meta.tags;
  } else if (const std::string* tagging = ctx.Header("x-amz-tagging")) {
    VLAKE_ASSIGN_OR_RETURN(meta.tags, ParseTaggingHeader(*tagging));
  }
  std::optional<ChecksumAlgorithm> alg;
  if (const std::string* a = ctx.Header("x-amz-checksum-algorithm")) {
    alg = ParseChecksumAlgorithm(*a);
    if (!alg) return Error(Code::kInvalidRequest, "Invalid x-amz-checksum-algorithm");
  } else if (src.meta.checksum) {
    alg = src.meta.checksum->algorithm;
  }
  VLAKE_ASSIGN_OR_RETURN(store::WriteConditions cond, WriteConditionsFromRequest(ctx));
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobWriter> blob, ctx.state->store->NewBlob());
  VLAKE_ASSIGN_OR_RETURN(IngestResult copied,
                         CopyObjectRange(src, 0, src.meta.size, alg, blob.get()));
  meta.etag = HexEncode(copied.md5);
  meta.checksum = copied.checksum;
  VLAKE_ASSIGN_OR_RETURN(
      store::ObjectMeta stored,
      ctx.state->store->PutObject(ctx.bucket, ctx.key, std::move(blob), std::move(meta), cond));
  XmlWriter xml("CopyObjectResult");
  xml.Element("LastModified", FormatIso8601Ms(stored.mtime_unix_ms));
  xml.Element("ETag", QuoteEtag(stored.etag));
  if (stored.checksum) {
    xml.Element("Checksum" + std::string(ChecksumAlgorithmName(stored.checksum->algorithm)),
                stored.checksum->value);
  }
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> GetObjectTagging(RequestContext& ctx) {
  ctx.op = "GetObjectTagging";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
  VLAKE_ASSIGN_OR_RETURN(store::ObjectMeta meta, ctx.state->store->HeadObject(ctx.bucket, ctx.key));
  XmlWriter xml("Tagging");
  xml.Open("TagSet");
  for (const auto& [k, v] : meta.tags) {
    xml.Open("Tag");
    xml.Element("Key", k);
    xml.Element("Value", v);
    xml.Close();
  }
  xml.Close();
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> PutObjectTagging(RequestContext& ctx) {
  ctx.op = "PutObjectTagging";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(ctx, 64 * 1024, false));
  VLAKE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "Tagging") return Error(Code::kMalformedXml, "expected <Tagging>");
  store::KeyValues tags;
  if (const XmlElement* set = doc.Child("TagSet")) {
    for (const XmlElement* tag : set->Children("Tag")) {
      const XmlElement* k = tag->Child("Key");
      const XmlElement* v = tag->Child("Value");
      if (!k) return Error(Code::kMalformedXml, "Tag without Key");
      tags.emplace_back(k->text, v ? v->text : "");
    }
  } else {
    return Error(Code::kMalformedXml, "expected <TagSet>");
  }
  VLAKE_RETURN_IF_ERROR(ValidateTags(tags));
  VLAKE_RETURN_IF_ERROR(ctx.state->store->SetObjectTags(ctx.bucket, ctx.key, std::move(tags)));
  return EmptyResponse(200);
}

Result<http::HttpResponse> DeleteObjectTagging(RequestContext& ctx) {
  ctx.op = "DeleteObjectTagging";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_RETURN_IF_ERROR(ctx.state->store->SetObjectTags(ctx.bucket, ctx.key, {}));
  return EmptyResponse(204);
}

}  // namespace

Result<store::WriteConditions> WriteConditionsFromRequest(const RequestContext& ctx) {
  store::WriteConditions cond;
  if (const std::string* inm = ctx.Header("if-none-match")) {
    if (TrimWhitespace(*inm) != "*") {
      return Error(Code::kNotImplemented, "If-None-Match on writes supports only \"*\"");
    }
    cond.if_none_match_star = true;
  }
  if (const std::string* im = ctx.Header("if-match")) cond.if_match = StripEtagQuotes(*im);
  return cond;
}

http::HttpResponse OwnerAclResponse(const RequestContext& ctx) {
  // Written by hand: the Grantee carries an xsi:type attribute that XmlWriter does not model.
  std::string id, name;
  AppendXmlEscaped(ctx.owner_id(), &id);
  AppendXmlEscaped(ctx.user ? ctx.user->display_name : "", &name);
  std::string owner = "<ID>" + id + "</ID><DisplayName>" + name + "</DisplayName>";
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy xmlns=\"";
  body += kS3XmlNamespace;
  body += "\"><Owner>" + owner +
          "</Owner><AccessControlList><Grant><Grantee "
          "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">" +
          owner +
          "</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>"
          "</AccessControlPolicy>";
  return XmlResponse(200, std::move(body));
}

Result<http::HttpResponse> HandleObject(RequestContext& ctx) {
  const std::string& m = ctx.req->method;
  bool upload = ctx.HasQuery("uploadId");
  if (m == "PUT") {
    if (upload || ctx.HasQuery("partNumber")) {
      return ctx.Header("x-amz-copy-source") ? UploadPartCopy(ctx) : UploadPart(ctx);
    }
    if (ctx.HasQuery("tagging")) return PutObjectTagging(ctx);
    if (ctx.HasQuery("acl")) {
      ctx.op = "PutObjectAcl";
      return Error(Code::kNotImplemented, "Object ACLs are not supported; use bucket ownership");
    }
    if (ctx.Header("x-amz-copy-source")) return CopyObject(ctx);
    return PutObject(ctx);
  }
  if (m == "GET" || m == "HEAD") {
    if (m == "GET" && upload) return ListParts(ctx);
    if (m == "GET" && ctx.HasQuery("tagging")) return GetObjectTagging(ctx);
    if (m == "GET" && ctx.HasQuery("acl")) {
      ctx.op = "GetObjectAcl";
      VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
      VLAKE_RETURN_IF_ERROR(ctx.state->store->HeadObject(ctx.bucket, ctx.key).status());
      return OwnerAclResponse(ctx);
    }
    return GetOrHeadObject(ctx);
  }
  if (m == "DELETE") {
    if (upload) return AbortMultipartUpload(ctx);
    if (ctx.HasQuery("tagging")) return DeleteObjectTagging(ctx);
    return DeleteObject(ctx);
  }
  if (m == "POST") {
    if (ctx.HasQuery("uploads")) return CreateMultipartUpload(ctx);
    if (upload) return CompleteMultipartUpload(ctx);
  }
  return Error(Code::kMethodNotAllowed, "");
}

}  // namespace vlake::s3
