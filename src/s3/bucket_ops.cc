// Service- and bucket-level operations: ListBuckets, Create/Head/Delete bucket, location,
// listings (v1, v2, versions), DeleteObjects.
#include <string>

#include "common/encoding.h"
#include "s3/errors.h"
#include "s3/names.h"
#include "s3/service_internal.h"
#include "s3/xml.h"

namespace vlake::s3 {
namespace {

constexpr int kMaxListKeys = 1000;
constexpr size_t kMaxDeleteBodyBytes = 2 << 20;

// Bucket configurations vlake does not support. GET answers what S3 answers for a bucket that
// has none set (clients like s3cmd `info` ask for all of them); PUT/DELETE are NotImplemented.
struct BucketSubresource {
  std::string_view name;
  Code get_code;                    // kOk: answer 200 with `empty_document`
  std::string_view empty_document;  // root element of the empty configuration
};
constexpr BucketSubresource kUnsupportedBucketSubresources[] = {
    {"policy", Code::kNoSuchBucketPolicy, ""},
    {"cors", Code::kNoSuchCorsConfiguration, ""},
    {"lifecycle", Code::kNoSuchLifecycleConfiguration, ""},
    {"website", Code::kNoSuchWebsiteConfiguration, ""},
    {"encryption", Code::kNoSuchEncryptionConfiguration, ""},
    {"publicAccessBlock", Code::kNoSuchPublicAccessBlockConfiguration, ""},
    {"ownershipControls", Code::kNoSuchOwnershipControls, ""},
    {"object-lock", Code::kNoSuchObjectLockConfiguration, ""},
    {"replication", Code::kNoSuchReplicationConfiguration, ""},
    {"logging", Code::kOk, "BucketLoggingStatus"},
    {"notification", Code::kOk, "NotificationConfiguration"},
    {"accelerate", Code::kOk, "AccelerateConfiguration"},
    {"requestPayment", Code::kOk, "RequestPaymentConfiguration"},
    {"intelligent-tiering", Code::kOk, "ListBucketIntelligentTieringConfigurationsOutput"},
    {"inventory", Code::kOk, "ListInventoryConfigurationsResult"},
    {"metrics", Code::kOk, "ListMetricsConfigurationsResult"},
    {"analytics", Code::kOk, "ListBucketAnalyticsConfigurationResult"},
    {"policyStatus", Code::kNoSuchBucketPolicy, ""},
};

Result<int> ParseMaxKeys(const RequestContext& ctx, std::string_view name) {
  if (!ctx.HasQuery(name)) return kMaxListKeys;
  std::string v = ctx.QueryOr(name, "");
  auto n = ParseUint64(v);
  if (!n) {
    return Error(Code::kInvalidArgument,
                 "Provided " + std::string(name) + " not an integer or within integer range");
  }
  return static_cast<int>(std::min<uint64_t>(*n, kMaxListKeys));
}

struct Encoder {
  bool url = false;
  std::string operator()(std::string_view s) const {
    return url ? UriEncode(s, SlashEncoding::kKeepSlash) : std::string(s);
  }
};

Result<Encoder> ParseEncoding(const RequestContext& ctx) {
  Encoder enc;
  if (ctx.HasQuery("encoding-type")) {
    if (ctx.QueryOr("encoding-type", "") != "url") {
      return Error(Code::kInvalidArgument, "Invalid Encoding Method specified in Request");
    }
    enc.url = true;
  }
  return enc;
}

void WriteOwner(XmlWriter& xml, const RequestContext& ctx, const std::string& owner_id) {
  xml.Open("Owner");
  xml.Element("ID", owner_id);
  xml.Element("DisplayName", ctx.state->users.DisplayNameOf(owner_id));
  xml.Close();
}

void WriteObjectEntry(XmlWriter& xml, const RequestContext& ctx, const Encoder& enc,
                      const store::ListEntry& e, bool with_owner, bool as_version) {
  xml.Open(as_version ? "Version" : "Contents");
  xml.Element("Key", enc(e.key));
  if (as_version) {
    xml.Element("VersionId", "null");
    xml.Element("IsLatest", "true");
  }
  xml.Element("LastModified", FormatIso8601Ms(e.meta.mtime_unix_ms));
  xml.Element("ETag", QuoteEtag(e.meta.etag));
  if (e.meta.checksum && !as_version) {
    xml.Element("ChecksumAlgorithm", ChecksumAlgorithmName(e.meta.checksum->algorithm));
  }
  xml.Element("Size", std::to_string(e.meta.size));
  if (with_owner) WriteOwner(xml, ctx, e.meta.owner_id);
  xml.Element("StorageClass", "STANDARD");
  xml.Close();
}

Result<http::HttpResponse> ListObjects(RequestContext& ctx) {
  bool v2 = ctx.QueryOr("list-type", "") == "2";
  bool versions = ctx.HasQuery("versions");
  ctx.op = versions ? "ListObjectVersions" : v2 ? "ListObjectsV2" : "ListObjects";
  if (ctx.HasQuery("list-type") && !v2) {
    return Error(Code::kInvalidArgument, "Invalid list-type");
  }
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
  VLAKE_ASSIGN_OR_RETURN(Encoder enc, ParseEncoding(ctx));
  VLAKE_ASSIGN_OR_RETURN(int max_keys, ParseMaxKeys(ctx, "max-keys"));
  store::ListOptions opts;
  opts.prefix = ctx.QueryOr("prefix", "");
  opts.delimiter = ctx.QueryOr("delimiter", "");
  opts.max_keys = max_keys;
  std::string token;
  if (v2) {
    opts.start_after = ctx.QueryOr("start-after", "");
    if (ctx.HasQuery("continuation-token")) {
      token = ctx.QueryOr("continuation-token", "");
      auto marker = Base64Decode(token);
      if (!marker || token.empty()) {
        return Error(Code::kInvalidArgument, "The continuation token provided is incorrect");
      }
      opts.start_after = std::max(opts.start_after, *marker);
    }
  } else if (versions) {
    opts.start_after = ctx.QueryOr("key-marker", "");
  } else {
    opts.start_after = ctx.QueryOr("marker", "");
  }
  VLAKE_ASSIGN_OR_RETURN(store::ListResult list, ctx.state->store->ListObjects(ctx.bucket, opts));

  XmlWriter xml(versions ? "ListVersionsResult" : "ListBucketResult");
  xml.Element("Name", ctx.bucket);
  xml.Element("Prefix", enc(opts.prefix));
  if (v2) {
    if (ctx.HasQuery("start-after")) xml.Element("StartAfter", enc(ctx.QueryOr("start-after", "")));
    if (ctx.HasQuery("continuation-token")) xml.Element("ContinuationToken", token);
    xml.Element("KeyCount", std::to_string(list.objects.size() + list.common_prefixes.size()));
  } else if (versions) {
    xml.Element("KeyMarker", enc(ctx.QueryOr("key-marker", "")));
    xml.Element("VersionIdMarker", ctx.QueryOr("version-id-marker", ""));
  } else {
    xml.Element("Marker", enc(ctx.QueryOr("marker", "")));
  }
  xml.Element("MaxKeys", std::to_string(max_keys));
  if (!opts.delimiter.empty()) xml.Element("Delimiter", enc(opts.delimiter));
  xml.Element("IsTruncated", list.truncated ? "true" : "false");
  if (list.truncated) {
    if (v2) {
      xml.Element("NextContinuationToken", Base64Encode(list.next_marker));
    } else if (versions) {
      xml.Element("NextKeyMarker", enc(list.next_marker));
      xml.Element("NextVersionIdMarker", "null");
    } else {
      xml.Element("NextMarker", enc(list.next_marker));
    }
  }
  if (enc.url) xml.Element("EncodingType", "url");
  bool with_owner = !v2 || ctx.QueryOr("fetch-owner", "") == "true";
  for (const auto& e : list.objects) WriteObjectEntry(xml, ctx, enc, e, with_owner, versions);
  for (const auto& p : list.common_prefixes) {
    xml.Open("CommonPrefixes");
    xml.Element("Prefix", enc(p));
    xml.Close();
  }
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> CreateBucket(RequestContext& ctx) {
  ctx.op = "CreateBucket";
  if (!ctx.user) return Error(Code::kAccessDenied, "");
  VLAKE_RETURN_IF_ERROR(ValidateBucketName(ctx.bucket));
  VLAKE_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(ctx, 64 * 1024, false));
  if (!TrimWhitespace(body).empty()) {
    VLAKE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
    if (doc.name != "CreateBucketConfiguration") {
      return Error(Code::kMalformedXml, "expected <CreateBucketConfiguration>");
    }
  }
  VLAKE_RETURN_IF_ERROR(ctx.state->store->CreateBucket(ctx.bucket, ctx.user->user_id));
  http::HttpResponse resp;
  resp.AddHeader("Location", "/" + ctx.bucket);
  return resp;
}

Result<http::HttpResponse> DeleteObjects(RequestContext& ctx) {
  ctx.op = "DeleteObjects";
  VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
  VLAKE_ASSIGN_OR_RETURN(std::string body, ReadSmallBody(ctx, kMaxDeleteBodyBytes, true));
  VLAKE_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "Delete") return Error(Code::kMalformedXml, "expected <Delete>");
  auto objects = doc.Children("Object");
  if (objects.empty() || objects.size() > 1000) {
    return Error(Code::kMalformedXml, "Delete must list 1 to 1000 objects");
  }
  const XmlElement* quiet_el = doc.Child("Quiet");
  bool quiet = quiet_el && EqualsIgnoreCase(TrimWhitespace(quiet_el->text), "true");
  XmlWriter xml("DeleteResult");
  for (const XmlElement* obj : objects) {
    const XmlElement* key_el = obj->Child("Key");
    if (!key_el) return Error(Code::kMalformedXml, "Object without Key");
    const std::string& key = key_el->text;
    Status st = ValidateObjectKey(key);
    if (st.ok()) {
      const XmlElement* version = obj->Child("VersionId");
      if (version && version->text != "null") {
        st = Error(Code::kInvalidArgument, "Invalid version id specified");
      }
    }
    if (st.ok()) st = ctx.state->store->DeleteObject(ctx.bucket, key);
    if (st.ok()) {
      if (quiet) continue;
      xml.Open("Deleted");
      xml.Element("Key", key);
      xml.Close();
    } else {
      xml.Open("Error");
      xml.Element("Key", key);
      xml.Element("Code", LookupError(st.code()).code);
      xml.Element("Message", st.message());
      xml.Close();
    }
  }
  return XmlResponse(200, xml.Finish());
}

}  // namespace

Result<http::HttpResponse> ListBuckets(RequestContext& ctx) {
  ctx.op = "ListBuckets";
  if (!ctx.user) return Error(Code::kAccessDenied, "");
  VLAKE_ASSIGN_OR_RETURN(std::vector<store::BucketInfo> buckets, ctx.state->store->ListBuckets());
  XmlWriter xml("ListAllMyBucketsResult");
  xml.Open("Owner");
  xml.Element("ID", ctx.user->user_id);
  xml.Element("DisplayName", ctx.user->display_name);
  xml.Close();
  xml.Open("Buckets");
  for (const auto& b : buckets) {
    if (b.owner_id != ctx.user->user_id) continue;
    xml.Open("Bucket");
    xml.Element("Name", b.name);
    xml.Element("CreationDate", FormatIso8601Ms(b.created_unix_ms));
    xml.Close();
  }
  xml.Close();
  return XmlResponse(200, xml.Finish());
}

Result<http::HttpResponse> HandleBucket(RequestContext& ctx) {
  const std::string& m = ctx.req->method;
  for (const BucketSubresource& sub : kUnsupportedBucketSubresources) {
    if (!ctx.HasQuery(sub.name)) continue;
    ctx.op = "Bucket-" + std::string(sub.name);
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, m != "GET").status());
    if (m != "GET") {
      return Error(Code::kNotImplemented,
                   "Bucket " + std::string(sub.name) + " configuration is not supported");
    }
    if (sub.get_code != Code::kOk) return Error(sub.get_code, "");
    XmlWriter xml(sub.empty_document);
    if (sub.name == "requestPayment") xml.Element("Payer", "BucketOwner");
    return XmlResponse(200, xml.Finish());
  }
  if (m == "PUT") {
    if (ctx.query.empty()) return CreateBucket(ctx);
    ctx.op = "PutBucketSubresource";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
    return Error(Code::kNotImplemented, "This bucket configuration is not supported");
  }
  if (m == "HEAD") {
    ctx.op = "HeadBucket";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
    http::HttpResponse resp;
    resp.AddHeader("x-amz-bucket-region", ctx.state->options.region);
    return resp;
  }
  if (m == "DELETE") {
    ctx.op = "DeleteBucket";
    if (!ctx.query.empty()) {
      VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
      if (ctx.HasQuery("tagging")) return EmptyResponse(204);
      return Error(Code::kNotImplemented, "This bucket configuration is not supported");
    }
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, true).status());
    VLAKE_RETURN_IF_ERROR(ctx.state->store->DeleteBucket(ctx.bucket));
    return EmptyResponse(204);
  }
  if (m == "POST") {
    if (ctx.HasQuery("delete")) return DeleteObjects(ctx);
    return Error(Code::kMethodNotAllowed, "");
  }
  if (m != "GET") return Error(Code::kMethodNotAllowed, "");
  if (ctx.HasQuery("location")) {
    ctx.op = "GetBucketLocation";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
    // us-east-1 is reported as an empty constraint, as S3 does.
    std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"";
    body += kS3XmlNamespace;
    body += "\">";
    if (ctx.state->options.region != "us-east-1") {
      AppendXmlEscaped(ctx.state->options.region, &body);
    }
    body += "</LocationConstraint>";
    return XmlResponse(200, std::move(body));
  }
  if (ctx.HasQuery("versioning")) {
    ctx.op = "GetBucketVersioning";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
    return XmlResponse(200, XmlWriter("VersioningConfiguration").Finish());
  }
  if (ctx.HasQuery("tagging")) {
    ctx.op = "GetBucketTagging";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
    return Error(Code::kNoSuchTagSet, "");
  }
  if (ctx.HasQuery("acl")) {
    ctx.op = "GetBucketAcl";
    VLAKE_RETURN_IF_ERROR(AuthorizeBucket(ctx, false).status());
    return OwnerAclResponse(ctx);
  }
  if (ctx.HasQuery("uploads")) return ListMultipartUploads(ctx);
  return ListObjects(ctx);
}

}  // namespace vlake::s3
