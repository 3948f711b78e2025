#include "http/request.h"

namespace vlake::http {

const std::string* HttpRequest::FindHeader(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) return &h.value;
  }
  return nullptr;
}

std::string_view HttpRequest::HeaderOr(std::string_view lower_name,
                                       std::string_view fallback) const {
  const std::string* v = FindHeader(lower_name);
  return v != nullptr ? std::string_view(*v) : fallback;
}

std::string HttpRequest::HeaderValues(std::string_view lower_name) const {
  std::string out;
  bool first = true;
  for (const Header& h : headers) {
    if (h.name != lower_name) continue;
    if (!first) out.push_back(',');
    out.append(h.value);
    first = false;
  }
  return out;
}

uint64_t HttpResponse::BodySize() const {
  uint64_t n = body.size();
  for (const FileSlice& s : file_slices) n += s.length;
  return n;
}

std::string_view StatusReason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      break;
  }
  // The reason phrase is optional on the wire (RFC 9112 §4); clients must not depend on it.
  return "Unknown";
}

}  // namespace vlake::http
