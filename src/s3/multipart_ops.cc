// Multipart uploads: create, upload part (body or copy), complete, abort, list.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/encoding.h"
#include "s3/names.h"
#include "s3/service_internal.h"
#include "s3/xml.h"

namespace vlake::s3 {
namespace {

Result<int> ParsePartNumber(const RequestContext& ctx) {
  auto n = ParseUint64(ctx.QueryOr("partNumber", ""));
  if (!n || *n < 1 || *n > static_cast<uint64_t>(store::kMaxPartNumber)) {
    return Error(Code::kInvalidArgument,
                 "Part number must be an integer between 1 and 10000, inclusive");
  }
  return static_cast<int>(*n);
}

std::string ChecksumElementName(ChecksumAlgorithm alg) {
  return "Checksum" + std::string(ChecksumAlgorithmName(alg));
}

void WriteInitiatorOwner(XmlWriter& xml, const RequestContext& ctx, const std::string& owner) {
  std::string_view display = ctx.state->users.DisplayNameOf(owner);
  for (const char* el : {"Initiator", "Owner"}) {
    xml.Open(el);
    xml.Element("ID", owner);
    xml.Element("DisplayName", display);
    xml.Close();
  }
}

Result<store::UploadInfo> AuthorizeUpload(RequestContext& ctx) {
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  return ctx.state->store->GetUpload(ctx.bucket, ctx.key, ctx.QueryOr("uploadId", ""));
}

Result<http::HttpResponse> PartResponse(const store::PartInfo& part) {
  http::HttpResponse resp;
  resp.AddHeader("ETag", QuoteEtag(part.etag));
  if (part.checksum) {
    resp.AddHeader(std::string(ChecksumHeaderName(part.checksum->algorithm)), part.checksum->value);
  }
  return resp;
}

// One <Part> of a CompleteMultipartUpload body, before the upload is known (so before its
// checksum algorithm is): every Checksum* element is kept.
struct CompletedPartXml {
  int part_number = 0;
  std::string etag;                                            // quotes stripped
  std::vector<std::pair<std::string, std::string>> checksums;  // element name, trimmed value

  std::optional<std::string> ChecksumOf(ChecksumAlgorithm alg) const {
    const std::string name = ChecksumElementName(alg);
    for (const auto& [element, value] : checksums) {
      if (element == name) return value;
    }
    return std::nullopt;
  }
};

Result<std::vector<CompletedPartXml>> ParseCompletedParts(const XmlElement& doc) {
  std::vector<CompletedPartXml> parts;
  for (const XmlElement* p : doc.Children("Part")) {
    const XmlElement* num = p->Child("PartNumber");
    const XmlElement* etag = p->Child("ETag");
    auto n = num ? ParseUint64(TrimWhitespace(num->text)) : std::nullopt;
    if (!n || !etag || *n < 1 || *n > static_cast<uint64_t>(store::kMaxPartNumber)) {
      return Error(Code::kMalformedXml, "Part needs a PartNumber (1-10000) and an ETag");
    }
    CompletedPartXml cp;
    cp.part_number = static_cast<int>(*n);
    cp.etag = StripEtagQuotes(etag->text);
    for (const XmlElement& child : p->children) {
      if (child.name.starts_with("Checksum")) {
        cp.checksums.emplace_back(child.name, std::string(TrimWhitespace(child.text)));
      }
    }
    parts.push_back(std::move(cp));
  }
  if (parts.empty()) {
    return Error(Code::kMalformedXml,
                 "The XML you provided was not well-formed or did not validate against our "
                 "published schema");
  }
  return parts;
}

Result<std::vector<CompletedPartXml>> ReadCompletedParts(RequestContext& ctx) {
  VLAKE_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(ctx, 4 << 20, false));
  VLAKE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "CompleteMultipartUpload") {
    return Error(Code::kMalformedXml, "expected <CompleteMultipartUpload>");
  }
  return ParseCompletedParts(doc);
}

Result<http::HttpResponse> CompletionResponse(const RequestContext& ctx,
                                              const store::ObjectMeta& meta) {
  XmlWriter xml("CompleteMultipartUploadResult");
  std::string host = std::string(ctx.HeaderOr("host", "localhost"));
  xml.Element("Location", "http://" + host + "/" + ctx.bucket + "/" +
                              UriEncode(ctx.key, SlashEncoding::kKeepSlash));
  xml.Element("Bucket", ctx.bucket);
  xml.Element("Key", ctx.key);
  xml.Element("ETag", QuoteEtag(meta.etag));
  if (meta.checksum) {
    xml.Element(ChecksumElementName(meta.checksum->algorithm), meta.checksum->value);
    xml.Element("ChecksumType", meta.checksum->type == store::ChecksumType::kComposite
                                    ? "COMPOSITE"
                                    : "FULL_OBJECT");
  }
  return XmlResponse(200, xml.Finish());
}

// Whether `listed` is the parts list `meta` was completed from: the same part numbers in the
// same order with the same ETags (and the same checksums where the client lists them).
bool SamePartsList(const store::ObjectMeta& meta, const std::vector<CompletedPartXml>& listed) {
  if (meta.parts.size() != listed.size()) return false;
  for (size_t i = 0; i < listed.size(); ++i) {
    const store::PartSummary& stored = meta.parts[i];
    if (stored.part_number != listed[i].part_number) return false;
    if (!EqualsIgnoreCase(stored.etag, listed[i].etag)) return false;
    if (meta.checksum && !stored.checksum.empty()) {
      std::optional<std::string> c = listed[i].ChecksumOf(meta.checksum->algorithm);
      if (c && *c != stored.checksum) return false;
    }
  }
  return true;
}

// S3 answers a CompleteMultipartUpload repeated after it succeeded (SDKs retry it when the
// response was lost) with 200 and the same result, as long as the object at the key is still
// the one that upload produced. Anything else keeps `missing` (NoSuchUpload): an upload that
// never existed or was aborted, a different parts list, a key overwritten since.
Result<http::HttpResponse> RepeatedCompletion(const RequestContext& ctx,
                                              const std::string& upload_id,
                                              const std::vector<CompletedPartXml>& listed,
                                              const Status& missing) {
  if (upload_id.empty()) return missing;
  Result<store::ObjectMeta> current = ctx.state->store->HeadObject(ctx.bucket, ctx.key);
  if (!current.ok() || current->completed_upload_id != upload_id ||
      !SamePartsList(*current, listed)) {
    return missing;
  }
  return CompletionResponse(ctx, *current);
}

}  // namespace

Result<http::HttpResponse> CreateMultipartUpload(RequestContext& ctx) {
  ctx.op = "CreateMultipartUpload";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  store::ObjectMeta meta;
  meta.owner_id = ctx.owner_id();
  meta.headers = StoredHeadersFromRequest(*ctx.req);
  if (const std::string* tagging = ctx.Header("x-amz-tagging")) {
    VLAKE_ASSIGN_OR_RETURN(meta.tags, ParseTaggingHeader(*tagging));
  }
  if (const std::string* a = ctx.Header("x-amz-checksum-algorithm")) {
    auto alg = ParseChecksumAlgorithm(TrimWhitespace(*a));
    if (!alg) return Error(Code::kInvalidRequest, "Invalid x-amz-checksum-algorithm");
    store::ChecksumValue c;
    c.algorithm = *alg;
    c.type = store::ChecksumType::kComposite;
    std::string type = std::string(ctx.HeaderOr("x-amz-checksum-type", "COMPOSITE"));
    if (type == "FULL_OBJECT") {
      if (*alg == ChecksumAlgorithm::kSha1 || *alg == ChecksumAlgorithm::kSha256) {
        return Error(Code::kInvalidRequest,
                     "The FULL_OBJECT checksum type cannot be used with the " +
                         std::string(ChecksumAlgorithmName(*alg)) + " checksum algorithm.");
      }
      c.type = store::ChecksumType::kFullObject;
    } else if (type != "COMPOSITE") {
      return Error(Code::kInvalidRequest, "Invalid x-amz-checksum-type");
    } else if (*alg == ChecksumAlgorithm::kCrc64Nvme) {
      return Error(Code::kInvalidRequest,
                   "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum "
                   "algorithm.");
    }
    meta.checksum = std::move(c);
  }
  VLAKE_ASSIGN_OR_RETURN(std::string upload_id,
                         ctx.state->store->CreateMultipartUpload(ctx.bucket, ctx.key, meta));
  XmlWriter xml("InitiateMultipartUploadResult");
  xml.Element("Bucket", ctx.bucket);
  xml.Element("Key", ctx.key);
  xml.Element("UploadId", upload_id);
  http::HttpResponse resp = XmlResponse(200, xml.Finish());
  if (meta.checksum) {
    resp.AddHeader("x-amz-checksum-algorithm",
                   std::string(ChecksumAlgorithmName(meta.checksum->algorithm)));
    resp.AddHeader("x-amz-checksum-type", meta.checksum->type == store::ChecksumType::kComposite
                                              ? "COMPOSITE"
                                              : "FULL_OBJECT");
  }
  return resp;
}

Result<http::HttpResponse> UploadPart(RequestContext& ctx) {
  ctx.op = "UploadPart";
  VLAKE_ASSIGN_OR_RETURN(int part_number, ParsePartNumber(ctx));
  VLAKE_ASSIGN_OR_RETURN(store::UploadInfo upload, AuthorizeUpload(ctx));
  VLAKE_ASSIGN_OR_RETURN(PayloadChecks checks, ParsePayloadChecks(ctx));
  if (upload.meta.checksum) {
    if (checks.algorithm && *checks.algorithm != upload.meta.checksum->algorithm) {
      return Error(Code::kInvalidRequest,
                   "Checksum Type mismatch occurred, expected checksum Type: " +
                       AsciiLower(ChecksumAlgorithmName(upload.meta.checksum->algorithm)));
    }
    // The part checksum feeds the object's composite checksum, so compute it even when the
    // client sent none.
    checks.algorithm = upload.meta.checksum->algorithm;
  }
  VLAKE_ASSIGN_OR_RETURN(std::optional<DirectRequest> direct, ParseDirect(ctx));
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobWriter> blob, ctx.state->store->NewBlob());
  VLAKE_ASSIGN_OR_RETURN(IngestResult in, IngestPayload(ctx, direct, checks, blob.get()));
  VLAKE_ASSIGN_OR_RETURN(
      store::PartInfo part,
      ctx.state->store->PutPart(ctx.bucket, ctx.key, upload.upload_id, part_number, std::move(blob),
                                HexEncode(in.md5), in.checksum));
  VLAKE_ASSIGN_OR_RETURN(http::HttpResponse resp, PartResponse(part));
  if (direct) AddDirectPutHeaders(in.size, &resp);
  return resp;
}

Result<http::HttpResponse> UploadPartCopy(RequestContext& ctx) {
  ctx.op = "UploadPartCopy";
  VLAKE_ASSIGN_OR_RETURN(int part_number, ParsePartNumber(ctx));
  VLAKE_ASSIGN_OR_RETURN(store::UploadInfo upload, AuthorizeUpload(ctx));
  VLAKE_ASSIGN_OR_RETURN(CopySource source, ParseCopySource(ctx));
  VLAKE_ASSIGN_OR_RETURN(store::ObjectHandle src, OpenCopySource(ctx, source));
  uint64_t first = 0, length = src.meta.size;
  if (const std::string* range = ctx.Header("x-amz-copy-source-range")) {
    // Unlike GET, a copy range must be an explicit, fully satisfiable "bytes=a-b".
    std::string_view r = TrimWhitespace(*range);
    size_t dash = r.find('-');
    std::optional<uint64_t> a, b;
    if (r.starts_with("bytes=") && dash != std::string_view::npos) {
      a = ParseUint64(r.substr(6, dash - 6));
      b = ParseUint64(r.substr(dash + 1));
    }
    if (!a || !b || *a > *b) {
      return Error(Code::kInvalidArgument,
                   "The x-amz-copy-source-range value must be of the form bytes=first-last");
    }
    if (*b >= src.meta.size) {
      return Error(Code::kInvalidRange, "Range specified is not valid for source object of size: " +
                                            std::to_string(src.meta.size));
    }
    first = *a;
    length = *b - *a + 1;
  }
  std::optional<ChecksumAlgorithm> alg;
  if (upload.meta.checksum) alg = upload.meta.checksum->algorithm;
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobWriter> blob, ctx.state->store->NewBlob());
  VLAKE_ASSIGN_OR_RETURN(IngestResult copied, CopyObjectRange(src, first, length, alg, blob.get()));
  VLAKE_ASSIGN_OR_RETURN(
      store::PartInfo part,
      ctx.state->store->PutPart(ctx.bucket, ctx.key, upload.upload_id, part_number, std::move(blob),
                                HexEncode(copied.md5), copied.checksum));
  XmlWriter xml("CopyPartResult");
  xml.Element("LastModified", FormatIso8601Ms(part.mtime_unix_ms));
  xml.Element("ETag", QuoteEtag(part.etag));
  if (part.checksum)
    xml.Element(ChecksumElementName(part.checksum->algorithm), part.checksum->value);
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> CompleteMultipartUpload(RequestContext& ctx) {
  ctx.op = "CompleteMultipartUpload";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  const std::string upload_id = ctx.QueryOr("uploadId", "");
  Result<store::UploadInfo> upload = ctx.state->store->GetUpload(ctx.bucket, ctx.key, upload_id);
  if (!upload.ok() && upload.status().code() != Code::kNoSuchUpload) return upload.status();
  Result<std::vector<CompletedPartXml>> listed = ReadCompletedParts(ctx);
  if (!upload.ok()) {
    // No such upload: unless this repeats a completion that succeeded, NoSuchUpload wins over
    // whatever is wrong with the body.
    if (!listed.ok()) return upload.status();
    return RepeatedCompletion(ctx, upload_id, *listed, upload.status());
  }
  if (!listed.ok()) return listed.status();

  std::vector<store::CompletedPart> parts;
  for (const CompletedPartXml& p : *listed) {
    store::CompletedPart cp;
    cp.part_number = p.part_number;
    cp.etag = p.etag;
    if (upload->meta.checksum) cp.checksum = p.ChecksumOf(upload->meta.checksum->algorithm);
    parts.push_back(std::move(cp));
  }
  VLAKE_ASSIGN_OR_RETURN(store::WriteConditions cond, WriteConditionsFromRequest(ctx));
  Result<store::ObjectMeta> meta =
      ctx.state->store->CompleteMultipartUpload(ctx.bucket, ctx.key, upload_id, parts, cond);
  // A concurrent retry of the same request may have completed the upload in between.
  if (!meta.ok() && meta.status().code() == Code::kNoSuchUpload) {
    return RepeatedCompletion(ctx, upload_id, *listed, meta.status());
  }
  if (!meta.ok()) return meta.status();
  return CompletionResponse(ctx, *meta);
}

Result<http::HttpResponse> AbortMultipartUpload(RequestContext& ctx) {
  ctx.op = "AbortMultipartUpload";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_RETURN_IF_ERROR(
      ctx.state->store->AbortMultipartUpload(ctx.bucket, ctx.key, ctx.QueryOr("uploadId", "")));
  return EmptyResponse(204);
}

Result<http::HttpResponse> ListParts(RequestContext& ctx) {
  ctx.op = "ListParts";
  VLAKE_ASSIGN_OR_RETURN(store::UploadInfo upload, AuthorizeUpload(ctx));
  int marker = 0, max_parts = 1000;
  if (ctx.HasQuery("part-number-marker")) {
    auto m = ParseUint64(ctx.QueryOr("part-number-marker", ""));
    if (!m || *m > static_cast<uint64_t>(store::kMaxPartNumber)) {
      return Error(Code::kInvalidArgument, "Invalid part-number-marker");
    }
    marker = static_cast<int>(*m);
  }
  if (ctx.HasQuery("max-parts")) {
    auto m = ParseUint64(ctx.QueryOr("max-parts", ""));
    if (!m) return Error(Code::kInvalidArgument, "Invalid max-parts");
    max_parts = static_cast<int>(std::min<uint64_t>(*m, 1000));
  }
  VLAKE_ASSIGN_OR_RETURN(
      store::ListPartsResult list,
      ctx.state->store->ListParts(ctx.bucket, ctx.key, upload.upload_id, marker, max_parts));
  XmlWriter xml("ListPartsResult");
  xml.Element("Bucket", ctx.bucket);
  xml.Element("Key", ctx.key);
  xml.Element("UploadId", upload.upload_id);
  WriteInitiatorOwner(xml, ctx, upload.meta.owner_id);
  xml.Element("StorageClass", "STANDARD");
  xml.Element("PartNumberMarker", std::to_string(marker));
  if (list.truncated) {
    xml.Element("NextPartNumberMarker", std::to_string(list.next_part_number_marker));
  }
  xml.Element("MaxParts", std::to_string(max_parts));
  xml.Element("IsTruncated", list.truncated ? "true" : "false");
  if (upload.meta.checksum) {
    xml.Element("ChecksumAlgorithm", ChecksumAlgorithmName(upload.meta.checksum->algorithm));
  }
  for (const auto& p : list.parts) {
    xml.Open("Part");
    xml.Element("PartNumber", std::to_string(p.part_number));
    xml.Element("LastModified", FormatIso8601Ms(p.mtime_unix_ms));
    xml.Element("ETag", QuoteEtag(p.etag));
    xml.Element("Size", std::to_string(p.size));
    if (p.checksum) xml.Element(ChecksumElementName(p.checksum->algorithm), p.checksum->value);
    xml.Close();
  }
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> ListMultipartUploads(RequestContext& ctx) {
  ctx.op = "ListMultipartUploads";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
  store::ListUploadsOptions opts;
  opts.prefix = ctx.QueryOr("prefix", "");
  opts.delimiter = ctx.QueryOr("delimiter", "");
  opts.key_marker = ctx.QueryOr("key-marker", "");
  opts.upload_id_marker = ctx.QueryOr("upload-id-marker", "");
  if (ctx.HasQuery("max-uploads")) {
    auto m = ParseUint64(ctx.QueryOr("max-uploads", ""));
    if (!m) return Error(Code::kInvalidArgument, "Invalid max-uploads");
    opts.max_uploads = static_cast<int>(std::min<uint64_t>(*m, 1000));
  }
  bool url = ctx.QueryOr("encoding-type", "") == "url";
  auto enc = [&](std::string_view s) {
    return url ? UriEncode(s, SlashEncoding::kKeepSlash) : std::string(s);
  };
  VLAKE_ASSIGN_OR_RETURN(store::ListUploadsResult list,
                         ctx.state->store->ListMultipartUploads(ctx.bucket, opts));
  XmlWriter xml("ListMultipartUploadsResult");
  xml.Element("Bucket", ctx.bucket);
  xml.Element("KeyMarker", enc(opts.key_marker));
  xml.Element("UploadIdMarker", opts.upload_id_marker);
  xml.Element("NextKeyMarker", enc(list.next_key_marker));
  xml.Element("NextUploadIdMarker", list.next_upload_id_marker);
  xml.Element("Prefix", enc(opts.prefix));
  if (!opts.delimiter.empty()) xml.Element("Delimiter", enc(opts.delimiter));
  xml.Element("MaxUploads", std::to_string(opts.max_uploads));
  xml.Element("IsTruncated", list.truncated ? "true" : "false");
  if (url) xml.Element("EncodingType", "url");
  for (const auto& u : list.uploads) {
    xml.Open("Upload");
    xml.Element("Key", enc(u.key));
    xml.Element("UploadId", u.upload_id);
    WriteInitiatorOwner(xml, ctx, u.meta.owner_id);
    xml.Element("StorageClass", "STANDARD");
    xml.Element("Initiated", FormatIso8601Ms(u.initiated_unix_ms));
    xml.Close();
  }
  for (const auto& p : list.common_prefixes) {
    xml.Open("CommonPrefixes");
    xml.Element("Prefix", enc(p));
    xml.Close();
  }
  return XmlResponse(200, xml.Finish());
}

}  // namespace vlake::s3
