// libFuzzer target for the HTTP framing parsers: request heads (parsed repeatedly, as on a
// pipelined connection), chunk-size lines and the chunked decoder. Beyond memory safety it
// checks properties: a parsed head is never reported complete early, and the chunked decoder
// gives the same answer however its input and output are split.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/chunked.h"
#include "http/parser.h"

namespace {

using vlake::http::ChunkedDecoder;
using vlake::http::HttpRequest;
using vlake::http::ParseState;

void Require(bool cond) {
  if (!cond) __builtin_trap();
}

struct DecodeOutcome {
  bool ok = true;
  bool done = false;
  size_t consumed = 0;
  std::string payload;
  size_t trailers = 0;
};

// Feeds `in` `step` bytes at a time into a decoder whose output buffer holds `out_cap` bytes.
DecodeOutcome DecodeChunked(std::string_view in, size_t step, size_t out_cap) {
  DecodeOutcome o;
  ChunkedDecoder decoder(512);
  std::string out(out_cap, '\0');
  size_t fed = 0;
  size_t pos = 0;
  while (!decoder.done()) {
    if (pos == fed) {
      if (fed == in.size()) break;
      fed = std::min(in.size(), fed + step);
    }
    size_t produced = 0;
    auto used = decoder.Decode(in.substr(pos, fed - pos), out.data(), out.size(), &produced);
    if (!used.ok()) {
      o.ok = false;
      return o;
    }
    Require(*used <= fed - pos && produced <= out.size());
    Require(*used > 0 || produced > 0 || decoder.done());
    o.payload.append(out.data(), produced);
    pos += *used;
  }
  o.done = decoder.done();
  o.consumed = pos;
  o.trailers = decoder.trailers().size();
  return o;
}

void FuzzChunked(std::string_view in, uint8_t knobs) {
  DecodeOutcome whole = DecodeChunked(in, in.size() + 1, in.size() + 1);
  DecodeOutcome split = DecodeChunked(in, 1 + (knobs & 7), 1 + ((knobs >> 3) & 7));
  Require(whole.ok == split.ok);
  if (whole.ok) {
    Require(whole.done == split.done);
    Require(whole.consumed == split.consumed);
    Require(whole.payload == split.payload);
    Require(whole.trailers == split.trailers);
  }
}

void FuzzHeads(std::string_view in, size_t max_head_bytes) {
  HttpRequest req;
  std::string_view rest = in;
  for (int requests = 0; requests < 64 && !rest.empty(); ++requests) {
    size_t consumed = 0;
    auto r = vlake::http::ParseRequestHead(rest, max_head_bytes, &req, &consumed);
    if (!r.ok() || *r == ParseState::kNeedMore) return;
    Require(consumed > 0 && consumed <= rest.size() && consumed <= max_head_bytes);
    Require(!req.target.empty() && req.target[0] == '/');
    Require(req.path.size() <= req.target.size());
    Require(!(req.chunked && req.content_length));
    for (const auto& h : req.headers) {
      Require(!h.name.empty());
      for (char c : h.name) Require(!(c >= 'A' && c <= 'Z'));
      for (char c : h.value) Require(c != '\r' && c != '\n');
    }
    // No strict prefix of a head may already count as a complete head.
    HttpRequest scratch;
    size_t ignored = 0;
    auto prefix = vlake::http::ParseRequestHead(rest.substr(0, consumed - 1), max_head_bytes,
                                                &scratch, &ignored);
    Require(prefix.ok() && *prefix == ParseState::kNeedMore);

    rest.remove_prefix(consumed);
    if (req.chunked) {
      DecodeOutcome body = DecodeChunked(rest, rest.size() + 1, 4096);
      if (!body.ok || !body.done) return;
      rest.remove_prefix(body.consumed);
    } else if (req.content_length) {
      if (*req.content_length > rest.size()) return;
      rest.remove_prefix(static_cast<size_t>(*req.content_length));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t knobs = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  FuzzHeads(in, (knobs & 0x80) ? 128 : 64 * 1024);

  std::string_view line = in.substr(0, in.find('\n'));
  if (auto n = vlake::http::ParseChunkSizeLine(line)) Require(*n <= (uint64_t{1} << 62));

  FuzzChunked(in, knobs);
  return 0;
}
