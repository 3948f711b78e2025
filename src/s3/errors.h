// The one table that maps a Status code to the S3 error code and HTTP status on the wire, and
// the builder of S3 XML error replies.
//
// Handlers never pick HTTP error statuses by hand: they return a Status and the service turns
// it into a reply here.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "http/request.h"

namespace vlake::s3 {

struct S3ErrorInfo {
  std::string_view code;  // "NoSuchKey"
  int http_status;        // 404
  std::string_view default_message;
};

S3ErrorInfo LookupError(Code code);

// <Error><Code/><Message/><Resource/><RequestId/><HostId/></Error> with the table's status.
// HEAD requests get no body (omit_body) but keep the status and x-amz-request-id.
http::HttpResponse ErrorResponse(const Status& status, std::string_view resource,
                                 std::string_view request_id, bool head_request);

}  // namespace vlake::s3
