// Test-only helpers shared by the signature tests (sigv4_test.cc, sigv2_test.cc): requests
// built the way the HTTP parser leaves them. Header-only; not part of any library.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "http/request.h"

namespace vlake::s3::testing {

// `target` is the raw origin-form target ("/bucket/key?x=y"): path and query split from it.
inline http::HttpRequest MakeRequest(std::string method, std::string target,
                                     std::vector<http::Header> headers) {
  http::HttpRequest req;
  req.method = std::move(method);
  req.target = target;
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  req.query = q == std::string::npos ? "" : target.substr(q + 1);
  req.headers = std::move(headers);
  return req;
}

}  // namespace vlake::s3::testing
