// `like` patterns of the filter language (docs/filter.md): compilation and matching.
//
// Text and pattern are sequences of units, a unit being a well-formed UTF-8 sequence or else a
// single byte, so '_' is one code point of valid UTF-8 and any text still has a defined answer.
// Units are found locally: a position is a unit boundary unless a well-formed multi-byte
// sequence starting at most 3 bytes before it covers it (such a sequence cannot start inside
// another one, since it starts with a non-continuation byte). A literal run of the pattern
// matches where its bytes are, from a boundary to a boundary.
//
// A pattern is pieces separated by '%'. The first piece is matched at the start unless the
// pattern begins with '%', the last at the end unless it ends with '%', and each one in
// between at its leftmost place after the previous one. A piece has a fixed number of units,
// so its leftmost match also ends first, leaving the most room for the rest: greedy is exact
// and nothing is ever retried. "abc%" is thus one prefix comparison and "%abc%" one memmem.
#include <string.h>  // memmem

#include <algorithm>

#include "vector/filter_internal.h"

namespace vlake::vector::internal {
namespace {

using Piece = LikePattern::Piece;

// The length of the well-formed UTF-8 sequence (Unicode 15, table 3-7) at s[i], 0 if none
// starts there. i < s.size().
size_t WellFormedLen(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t lead = byte(i);
  if (lead < 0x80) return 1;
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

size_t UnitLen(std::string_view s, size_t i) { return std::max<size_t>(1, WellFormedLen(s, i)); }

bool IsBoundary(std::string_view s, size_t p) {
  if (p == 0 || p >= s.size()) return true;
  for (size_t q = p > 3 ? p - 3 : 0; q < p; ++q) {
    if (WellFormedLen(s, q) > p - q) return false;
  }
  return true;
}

// The last boundary before p > 0 (units are at most 4 bytes, and 0 is one).
size_t PrevBoundary(std::string_view s, size_t p) {
  size_t q = p - 1;
  while (!IsBoundary(s, q)) --q;
  return q;
}

size_t CountUnits(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += UnitLen(s, i)) ++n;
  return n;
}

// Whether `piece` matches t from the boundary q; *end is where the match stops.
bool MatchAt(const Piece& piece, std::string_view t, size_t q, size_t* end) {
  size_t p = q;
  for (const LikePattern::Part& part : piece.parts) {
    if (part.any_one) {
      if (p >= t.size()) return false;
      p += UnitLen(t, p);
    } else {
      if (t.size() - p < part.literal.size() ||
          t.compare(p, part.literal.size(), part.literal) != 0) {
        return false;
      }
      p += part.literal.size();
      if (!IsBoundary(t, p)) return false;
    }
  }
  *end = p;
  return true;
}

// The leftmost match of `piece` at a boundary >= *pos (itself a boundary); moves *pos past it.
bool FindFrom(const Piece& piece, std::string_view t, size_t* pos) {
  const LikePattern::Part& first = piece.parts[0];
  if (first.any_one) {
    for (size_t q = *pos;; q += UnitLen(t, q)) {
      size_t end = 0;
      if (MatchAt(piece, t, q, &end)) {
        *pos = end;
        return true;
      }
      if (q >= t.size()) return false;
    }
  }
  const std::string& lit = first.literal;
  const bool only_literal = piece.parts.size() == 1;
  for (size_t from = *pos; from + lit.size() <= t.size();) {
    const void* hit = memmem(t.data() + from, t.size() - from, lit.data(), lit.size());
    if (hit == nullptr) return false;
    const size_t q = static_cast<size_t>(static_cast<const char*>(hit) - t.data());
    if (IsBoundary(t, q)) {
      if (only_literal) {
        if (IsBoundary(t, q + lit.size())) {
          *pos = q + lit.size();
          return true;
        }
      } else if (size_t end = 0; MatchAt(piece, t, q, &end)) {
        *pos = end;
        return true;
      }
    }
    from = q + 1;
  }
  return false;
}

// Whether `piece` matches a suffix of t that starts at or after the boundary pos.
bool MatchSuffix(const Piece& piece, std::string_view t, size_t pos) {
  size_t q = t.size();
  for (size_t u = 0; u < piece.units; ++u) {
    if (q <= pos) return false;
    q = PrevBoundary(t, q);
  }
  size_t end = 0;
  return q >= pos && MatchAt(piece, t, q, &end) && end == t.size();
}

}  // namespace

bool LikePattern::IsLiteral(std::string* out) const {
  if (has_any || pieces.size() != 1) return false;
  const std::vector<Part>& parts = pieces[0].parts;
  if (parts.size() > 1 || (parts.size() == 1 && parts[0].any_one)) return false;
  *out = parts.empty() ? std::string() : parts[0].literal;
  return true;
}

LikePattern CompileLike(std::string_view quoted) {
  LikePattern p;
  Piece piece;
  const auto add_byte = [&](char c) {
    if (piece.parts.empty() || piece.parts.back().any_one) piece.parts.emplace_back();
    piece.parts.back().literal.push_back(c);
  };
  const auto close_piece = [&] {
    if (piece.parts.empty()) return;
    for (const LikePattern::Part& part : piece.parts) {
      piece.units += part.any_one ? 1 : CountUnits(part.literal);
    }
    p.pieces.push_back(std::move(piece));
    piece = Piece();
  };
  const std::string_view body = quoted.substr(1, quoted.size() - 2);
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\\' && i + 1 < body.size()) {
      const char e = body[++i];
      add_byte(e == 'n' ? '\n' : e == 't' ? '\t' : e);  // \% \_ \\ \" \' are the character
    } else if (c == '%') {
      if (i == 0) p.open_start = true;
      if (i + 1 == body.size()) p.open_end = true;
      p.has_any = true;
      close_piece();
    } else if (c == '_') {
      piece.parts.push_back({std::string(), true});
    } else {
      add_byte(c);
    }
  }
  const bool empty = p.pieces.empty() && piece.parts.empty();
  close_piece();
  if (!p.has_any && empty) p.pieces.emplace_back();  // "" matches only ""
  return p;
}

bool LikeMatch(const LikePattern& p, std::string_view t) {
  size_t pos = 0;
  if (!p.has_any) {
    return MatchAt(p.pieces[0], t, 0, &pos) && pos == t.size();
  }
  size_t first = 0, last = p.pieces.size();
  if (!p.open_start) {
    if (!MatchAt(p.pieces[0], t, 0, &pos)) return false;
    first = 1;
  }
  // Without a leading or trailing '%' there are two pieces at least ("a%b").
  if (!p.open_end) --last;
  for (size_t k = first; k < last; ++k) {
    if (!FindFrom(p.pieces[k], t, &pos)) return false;
  }
  return p.open_end || MatchSuffix(p.pieces.back(), t, pos);
}

}  // namespace vlake::vector::internal
