// Incremental HTTP/1.1 request-head parser (request line + header fields).
//
// Strict where ambiguity could be exploited (request smuggling): rejects obs-fold, bare LF
// inside the head is accepted only as a line terminator, conflicting Content-Length values,
// Content-Length together with Transfer-Encoding, transfer codings other than "chunked",
// control characters in names/values, and heads above the size limit.
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "http/request.h"

namespace vlake::http {

enum class ParseState { kNeedMore, kDone };

// Parses one request head from the start of `buf`. On kDone, `*consumed` is the number of
// bytes of the head (including the final empty line) and `*out` is filled. kNeedMore means the
// head is incomplete and shorter than `max_head_bytes`. Errors: kBadRequest (malformed),
// kEntityTooLarge (head above the limit; answer 431), kNotImplemented (unknown
// transfer-coding; answer 501).
Result<ParseState> ParseRequestHead(std::string_view buf, size_t max_head_bytes, HttpRequest* out,
                                    size_t* consumed);

// Parses a chunk-size line "1a;ext=v" (without CRLF); nullopt when malformed or > 2^62.
std::optional<uint64_t> ParseChunkSizeLine(std::string_view line);

// Parses one field line "Name: value" (without its line terminator) into `out`, lowercasing
// the name and trimming the value. Shared by request heads, chunked trailers and the client's
// response parser. Error: kBadRequest (empty or non-token name, space before ':', control
// characters in the value, obs-fold).
Status ParseFieldLine(std::string_view line, Header* out);

}  // namespace vlake::http
