#include "http/parser.h"

#include <array>
#include <cstring>

#include "common/encoding.h"

namespace vlake::http {
namespace {

// tchar from RFC 9110 §5.6.2: the characters allowed in methods, field names and other tokens.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTokenChar = MakeTokenTable();

bool IsTokenChar(char c) { return kTokenChar[static_cast<unsigned char>(c)]; }

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// field-vchar, SP, HTAB and obs-text: everything except the other controls and DEL.
bool IsFieldValueChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && IsOws(v.front())) v.remove_prefix(1);
  while (!v.empty() && IsOws(v.back())) v.remove_suffix(1);
  return v;
}

Status Bad(const char* why) { return Error(Code::kBadRequest, why); }

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 §5.6.1).
template <typename Fn>
void ForEachListElement(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = TrimOws(list.substr(0, comma));
    if (!element.empty()) fn(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// Strips "scheme://authority" from an absolute-form target, leaving origin-form. Returns false
// when `target` is in no form an origin server must accept.
bool NormalizeTarget(std::string_view* target) {
  if (!target->empty() && target->front() == '/') return true;
  size_t scheme_len = 0;
  if (target->size() > 7 && EqualsIgnoreCase(target->substr(0, 7), "http://")) {
    scheme_len = 7;
  } else if (target->size() > 8 && EqualsIgnoreCase(target->substr(0, 8), "https://")) {
    scheme_len = 8;
  } else {
    return false;  // authority-form, asterisk-form or garbage: nothing S3 needs
  }
  std::string_view rest = target->substr(scheme_len);
  size_t path_start = rest.find_first_of("/?");
  if (path_start == 0) return false;  // empty authority
  *target = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  return true;
}

Status ParseRequestLine(std::string_view line, HttpRequest* out) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Bad("request line has no target");
  std::string_view method = line.substr(0, sp1);
  if (!IsToken(method)) return Bad("invalid method");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Bad("request line has no version");
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.empty()) return Bad("empty request target");
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    // Raw UTF-8 (obs-text) is tolerated because some S3 clients send unencoded keys.
    if (u <= 0x20 || u == 0x7f) return Bad("invalid character in request target");
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
      (version[7] != '0' && version[7] != '1')) {
    return Bad("unsupported HTTP version");
  }
  if (!NormalizeTarget(&target)) return Bad("request target is not origin-form");

  out->method.assign(method);
  if (target.empty()) {
    out->target.assign("/");
  } else if (target.front() == '?') {
    out->target.assign("/");
    out->target.append(target);
  } else {
    out->target.assign(target);
  }
  std::string_view full = out->target;
  size_t q = full.find('?');
  out->path.assign(full.substr(0, q));
  if (q == std::string_view::npos) {
    out->query.clear();
  } else {
    out->query.assign(full.substr(q + 1));
  }
  out->version_minor = version[7] - '0';
  return Status::Ok();
}

// Applies the framing-relevant fields as they are parsed.
struct FramingState {
  bool saw_te = false;
  bool saw_host = false;
  bool connection_close = false;
  bool connection_keep_alive = false;
};

Status ApplyField(const Header& h, HttpRequest* out, FramingState* st) {
  const std::string& n = h.name;
  if (n == "content-length") {
    std::optional<uint64_t> v = ParseUint64(h.value);
    // Values past 2^62 are no real body and would only test our arithmetic.
    if (!v || *v > (uint64_t{1} << 62)) return Bad("invalid Content-Length");
    if (out->content_length && *out->content_length != *v) {
      return Bad("conflicting Content-Length values");
    }
    out->content_length = *v;
  } else if (n == "transfer-encoding") {
    // Only a single "chunked" coding is supported; anything layered must be refused, not
    // guessed at, or the framing would differ from what a proxy in front decided.
    if (st->saw_te || !EqualsIgnoreCase(h.value, "chunked")) {
      return Error(Code::kNotImplemented, "unsupported transfer-coding");
    }
    st->saw_te = true;
    out->chunked = true;
  } else if (n == "connection") {
    ForEachListElement(h.value, [st](std::string_view opt) {
      if (EqualsIgnoreCase(opt, "close")) st->connection_close = true;
      if (EqualsIgnoreCase(opt, "keep-alive")) st->connection_keep_alive = true;
    });
  } else if (n == "expect") {
    if (EqualsIgnoreCase(h.value, "100-continue")) out->expect_continue = true;
  } else if (n == "host") {
    if (st->saw_host) return Bad("duplicate Host");
    st->saw_host = true;
  }
  return Status::Ok();
}

}  // namespace

Status ParseFieldLine(std::string_view line, Header* out) {
  if (line.empty() || IsOws(line.front())) return Bad("obs-fold or empty field line");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Bad("field line without ':'");
  std::string_view name = line.substr(0, colon);
  // IsToken also rejects whitespace before the colon (RFC 9112 §5.1).
  if (!IsToken(name)) return Bad("invalid field name");
  std::string_view value = TrimOws(line.substr(colon + 1));
  for (char c : value) {
    if (!IsFieldValueChar(c)) return Bad("control character in field value");
  }
  out->name.assign(name);
  for (char& c : out->name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  out->value.assign(value);
  return Status::Ok();
}

Result<ParseState> ParseRequestHead(std::string_view buf, size_t max_head_bytes, HttpRequest* out,
                                    size_t* consumed) {
  // RFC 9112 §2.2: ignore empty lines before the request line (left after a body by some
  // pipelining clients). They count against the limit so they cannot be sent forever.
  size_t pos = 0;
  while (pos < buf.size()) {
    if (buf[pos] == '\n') {
      ++pos;
    } else if (buf[pos] == '\r' && pos + 1 < buf.size() && buf[pos + 1] == '\n') {
      pos += 2;
    } else {
      break;
    }
  }

  // Find the empty line that ends the head before touching `out`, so kNeedMore costs one scan.
  const size_t head_start = pos;
  size_t head_end = std::string_view::npos;
  size_t line_start = pos;
  while (line_start < buf.size()) {
    const void* nl = std::memchr(buf.data() + line_start, '\n', buf.size() - line_start);
    if (nl == nullptr) break;
    size_t nl_pos = static_cast<const char*>(nl) - buf.data();
    size_t len = nl_pos - line_start;
    if (line_start != head_start && (len == 0 || (len == 1 && buf[line_start] == '\r'))) {
      head_end = nl_pos + 1;
      break;
    }
    line_start = nl_pos + 1;
    if (line_start > max_head_bytes) break;
  }
  if (head_end == std::string_view::npos) {
    if (buf.size() > max_head_bytes) return Error(Code::kEntityTooLarge, "request head too large");
    return ParseState::kNeedMore;
  }
  if (head_end > max_head_bytes) return Error(Code::kEntityTooLarge, "request head too large");

  out->chunked = false;
  out->content_length.reset();
  out->expect_continue = false;
  FramingState st;

  size_t header_count = 0;
  line_start = head_start;
  bool first_line = true;
  while (true) {
    size_t nl_pos = buf.find('\n', line_start);
    std::string_view line = buf.substr(line_start, nl_pos - line_start);
    line_start = nl_pos + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first_line) {
      VLAKE_RETURN_IF_ERROR(ParseRequestLine(line, out));
      first_line = false;
      continue;
    }
    if (line.empty()) break;  // the terminator found above
    // Reuse the vector's slots so a connection's steady state allocates little.
    if (header_count == out->headers.size()) out->headers.emplace_back();
    Header& h = out->headers[header_count++];
    VLAKE_RETURN_IF_ERROR(ParseFieldLine(line, &h));
    VLAKE_RETURN_IF_ERROR(ApplyField(h, out, &st));
  }
  out->headers.resize(header_count);

  if (out->chunked && out->content_length) {
    return Bad("both Content-Length and Transfer-Encoding");
  }
  if (out->chunked && out->version_minor == 0) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    return Bad("Transfer-Encoding in an HTTP/1.0 request");
  }
  if (out->version_minor == 0) {
    out->keep_alive = st.connection_keep_alive && !st.connection_close;
    out->expect_continue = false;  // RFC 9110 §10.1.1: ignore 100-continue from HTTP/1.0
  } else {
    out->keep_alive = !st.connection_close;
  }
  *consumed = head_end;
  return ParseState::kDone;
}

namespace {

// quoted-string per RFC 9110 §5.6.4, starting at s[*i] == '"'; advances past the closing quote.
bool SkipQuotedString(std::string_view s, size_t* i) {
  ++*i;
  while (*i < s.size()) {
    char c = s[*i];
    if (c == '"') {
      ++*i;
      return true;
    }
    if (c == '\\') {
      ++*i;
      if (*i >= s.size() || !IsFieldValueChar(s[*i])) return false;
    } else if (!IsFieldValueChar(c)) {
      return false;
    }
    ++*i;
  }
  return false;
}

void SkipOws(std::string_view s, size_t* i) {
  while (*i < s.size() && IsOws(s[*i])) ++*i;
}

size_t SkipToken(std::string_view s, size_t i) {
  while (i < s.size() && IsTokenChar(s[i])) ++i;
  return i;
}

}  // namespace

std::optional<uint64_t> ParseChunkSizeLine(std::string_view line) {
  constexpr uint64_t kMaxChunk = uint64_t{1} << 62;
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    char c = line[i];
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      break;
    }
    // Checked before shifting so leading zeros are fine and no digit count can overflow.
    if (size > (kMaxChunk >> 4)) return std::nullopt;
    size = (size << 4) | digit;
  }
  if (i == 0 || size > kMaxChunk) return std::nullopt;
  // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
  while (true) {
    SkipOws(line, &i);
    if (i == line.size()) return size;
    if (line[i] != ';') return std::nullopt;
    ++i;
    SkipOws(line, &i);
    size_t name_end = SkipToken(line, i);
    if (name_end == i) return std::nullopt;
    i = name_end;
    SkipOws(line, &i);
    if (i < line.size() && line[i] == '=') {
      ++i;
      SkipOws(line, &i);
      if (i < line.size() && line[i] == '"') {
        if (!SkipQuotedString(line, &i)) return std::nullopt;
      } else {
        size_t value_end = SkipToken(line, i);
        if (value_end == i) return std::nullopt;
        i = value_end;
      }
    }
  }
}

}  // namespace vlake::http
