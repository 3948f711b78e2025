#include "s3/errors.h"

#include "s3/xml.h"

namespace vlake::s3 {

S3ErrorInfo LookupError(Code code) {
  switch (code) {
    case Code::kOk:
      return {"OK", 200, ""};
    case Code::kInvalidArgument:
      return {"InvalidArgument", 400, "Invalid Argument"};
    case Code::kNotFound:
      return {"NoSuchKey", 404, "The specified key does not exist."};
    case Code::kAlreadyExists:
      return {"InvalidRequest", 409, "The resource already exists."};
    case Code::kIoError:
    case Code::kCorruption:
    case Code::kInternal:
      return {"InternalError", 500, "We encountered an internal error. Please try again."};
    case Code::kUnavailable:
      return {"ServiceUnavailable", 503, "Please reduce your request rate."};
    case Code::kTimeout:
    case Code::kRequestTimeout:
      return {"RequestTimeout", 400,
              "Your socket connection to the server was not read from or written to within the "
              "timeout period."};
    case Code::kCancelled:
      return {"RequestCancelled", 400, "The request was cancelled."};
    case Code::kNotImplemented:
      return {"NotImplemented", 501,
              "A header or query you provided implies functionality that is not implemented."};
    case Code::kNoSuchBucket:
      return {"NoSuchBucket", 404, "The specified bucket does not exist"};
    case Code::kNoSuchKey:
      return {"NoSuchKey", 404, "The specified key does not exist."};
    case Code::kNoSuchUpload:
      return {"NoSuchUpload", 404,
              "The specified multipart upload does not exist. The upload ID might be invalid, or "
              "the multipart upload might have been aborted or completed."};
    case Code::kBucketAlreadyExists:
      return {"BucketAlreadyExists", 409,
              "The requested bucket name is not available. The bucket namespace is shared by all "
              "users of the system. Please select a different name and try again."};
    case Code::kBucketAlreadyOwnedByYou:
      return {"BucketAlreadyOwnedByYou", 409,
              "Your previous request to create the named bucket succeeded and you already own "
              "it."};
    case Code::kBucketNotEmpty:
      return {"BucketNotEmpty", 409, "The bucket you tried to delete is not empty"};
    case Code::kInvalidBucketName:
      return {"InvalidBucketName", 400, "The specified bucket is not valid."};
    case Code::kKeyTooLong:
      return {"KeyTooLongError", 400, "Your key is too long"};
    case Code::kEntityTooSmall:
      return {"EntityTooSmall", 400,
              "Your proposed upload is smaller than the minimum allowed object size."};
    case Code::kEntityTooLarge:
      return {"EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"};
    case Code::kInvalidPart:
      return {"InvalidPart", 400,
              "One or more of the specified parts could not be found. The part may not have been "
              "uploaded, or the specified entity tag may not match the part's entity tag."};
    case Code::kInvalidPartOrder:
      return {"InvalidPartOrder", 400,
              "The list of parts was not in ascending order. The parts list must be specified in "
              "order by part number."};
    case Code::kBadDigest:
      return {"BadDigest", 400, "The Content-MD5 you specified did not match what we received."};
    case Code::kInvalidDigest:
      return {"InvalidDigest", 400, "The Content-MD5 you specified is not valid."};
    case Code::kInvalidRange:
      return {"InvalidRange", 416, "The requested range is not satisfiable"};
    case Code::kInvalidPartNumber:
      return {"InvalidPartNumber", 416, "The requested partnumber is not satisfiable"};
    case Code::kInvalidRdmaToken:
      return {"InvalidRDMAToken", 400, "The x-amz-rdma-token header is not valid."};
    case Code::kRdmaNotSupported:
      return {"RDMANotSupported", 501,
              "This server does not serve the kind of x-amz-rdma-token sent; send the payload "
              "in the request body."};
    case Code::kRdmaTransferFailed:
      return {"RDMATransferFailed", 500, "The direct data transfer failed."};
    case Code::kNoSuchBucketPolicy:
      return {"NoSuchBucketPolicy", 404, "The bucket policy does not exist"};
    case Code::kNoSuchCorsConfiguration:
      return {"NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"};
    case Code::kNoSuchLifecycleConfiguration:
      return {"NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"};
    case Code::kNoSuchWebsiteConfiguration:
      return {"NoSuchWebsiteConfiguration", 404,
              "The specified bucket does not have a website configuration"};
    case Code::kNoSuchEncryptionConfiguration:
      return {"ServerSideEncryptionConfigurationNotFoundError", 404,
              "The server side encryption configuration was not found"};
    case Code::kNoSuchPublicAccessBlockConfiguration:
      return {"NoSuchPublicAccessBlockConfiguration", 404,
              "The public access block configuration was not found"};
    case Code::kNoSuchOwnershipControls:
      return {"OwnershipControlsNotFoundError", 404,
              "The bucket ownership controls were not found"};
    case Code::kNoSuchObjectLockConfiguration:
      return {"ObjectLockConfigurationNotFoundError", 404,
              "Object Lock configuration does not exist for this bucket"};
    case Code::kNoSuchReplicationConfiguration:
      return {"ReplicationConfigurationNotFoundError", 404,
              "The replication configuration was not found"};
    case Code::kPreconditionFailed:
      return {"PreconditionFailed", 412,
              "At least one of the pre-conditions you specified did not hold"};
    case Code::kNotModified:
      return {"NotModified", 304, "Not Modified"};
    case Code::kAccessDenied:
      return {"AccessDenied", 403, "Access Denied"};
    case Code::kSignatureDoesNotMatch:
      return {"SignatureDoesNotMatch", 403,
              "The request signature we calculated does not match the signature you provided. "
              "Check your key and signing method."};
    case Code::kInvalidAccessKeyId:
      return {"InvalidAccessKeyId", 403,
              "The AWS Access Key Id you provided does not exist in our records."};
    case Code::kRequestTimeTooSkewed:
      return {"RequestTimeTooSkewed", 403,
              "The difference between the request time and the current time is too large."};
    case Code::kMalformedXml:
      return {"MalformedXML", 400,
              "The XML you provided was not well-formed or did not validate against our "
              "published schema"};
    case Code::kInvalidRequest:
      return {"InvalidRequest", 400, "Invalid Request"};
    case Code::kContentSha256Mismatch:
      return {"XAmzContentSHA256Mismatch", 400,
              "The provided 'x-amz-content-sha256' header does not match what was computed."};
    case Code::kIncompleteBody:
      return {"IncompleteBody", 400,
              "You did not provide the number of bytes specified by the Content-Length HTTP "
              "header."};
    case Code::kMissingContentLength:
      return {"MissingContentLength", 411, "You must provide the Content-Length HTTP header."};
    case Code::kMethodNotAllowed:
      return {"MethodNotAllowed", 405,
              "The specified method is not allowed against this resource."};
    case Code::kInvalidTag:
      return {"InvalidTag", 400, "The TagSet is not valid."};
    case Code::kNoSuchTagSet:
      return {"NoSuchTagSet", 404, "The TagSet does not exist"};
    case Code::kAuthorizationHeaderMalformed:
      return {"AuthorizationHeaderMalformed", 400,
              "The authorization header you provided is invalid."};
    case Code::kMissingSecurityHeader:
      return {"MissingSecurityHeader", 400, "Your request is missing a required header."};
    case Code::kExpiredToken:
      return {"ExpiredToken", 400, "The provided token has expired."};
    case Code::kInvalidEncryptionAlgorithm:
      return {"InvalidEncryptionAlgorithmError", 400,
              "The encryption request you specified is not valid."};
    case Code::kMalformedTrailer:
      return {"MalformedTrailerError", 400,
              "The request contained trailing data that was not well-formed."};
    case Code::kInvalidChecksum:
      return {"InvalidChecksum", 400, "The checksum you specified is not valid."};
    case Code::kConditionalRequestConflict:
      return {"ConditionalRequestConflict", 409,
              "A conflicting conditional operation is currently in progress against this "
              "resource."};
    case Code::kBadRequest:
      return {"BadRequest", 400, "Bad Request"};
    case Code::kEntityTooLargeHeader:
      return {"RequestHeaderSectionTooLarge", 431, "Your request header section is too large."};
    case Code::kUnauthenticated:
      return {"Unauthenticated", 401, "The request carries no valid credentials."};
  }
  return {"InternalError", 500, "We encountered an internal error. Please try again."};
}

http::HttpResponse ErrorResponse(const Status& status, std::string_view resource,
                                 std::string_view request_id, bool head_request) {
  S3ErrorInfo info = LookupError(status.code());
  http::HttpResponse resp;
  resp.status = info.http_status;
  // 304 never carries a body; HEAD replies never do either (the status says it all).
  if (head_request || info.http_status == 304) {
    resp.omit_body = true;
    resp.AddHeader("Content-Length", "0");
    return resp;
  }
  XmlWriter xml("Error", "");
  xml.Element("Code", info.code);
  xml.Element("Message", status.message().empty() ? info.default_message : status.message());
  xml.Element("Resource", resource);
  xml.Element("RequestId", request_id);
  xml.Element("HostId", request_id);
  resp.AddHeader("Content-Type", "application/xml");
  resp.body = xml.Finish();
  return resp;
}

}  // namespace vlake::s3
