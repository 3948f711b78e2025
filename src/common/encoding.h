// Text encodings: hex, base64, URI percent-encoding (AWS flavour), HTTP dates, ISO-8601.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlake {

std::string HexEncode(std::string_view bytes);  // lowercase
std::optional<std::string> HexDecode(std::string_view hex);
std::string Base64Encode(std::string_view bytes);
// Strict standard base64 with padding; nullopt on any invalid character or length.
std::optional<std::string> Base64Decode(std::string_view text);

// Percent-encodes every byte outside A-Z a-z 0-9 - _ . ~ (uppercase hex). When
// keep_slash is kKeepSlash, '/' is left as is (SigV4 canonical URI for S3).
enum class SlashEncoding { kEncodeSlash, kKeepSlash };
std::string UriEncode(std::string_view s, SlashEncoding slash);
// Decodes %XX escapes; '+' is kept literally unless plus_is_space. nullopt on a bad escape.
enum class PlusDecoding { kPlusLiteral, kPlusIsSpace };
std::optional<std::string> UriDecode(std::string_view s, PlusDecoding plus);

// Splits "a=1&b=x%20y&c" into decoded pairs ('+' is a space, a name without '=' has an empty
// value, empty items are skipped); nullopt on a bad %-escape. Query strings and x-amz-tagging.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseFormPairs(
    std::string_view text);

// Seconds since the Unix epoch <-> "20130524T000000Z".
std::string FormatAmzDate(int64_t unix_seconds);
std::optional<int64_t> ParseAmzDate(std::string_view text);
// <-> "Fri, 24 May 2013 00:00:00 GMT" (RFC 7231 IMF-fixdate; parsing also accepts RFC 850 and
// asctime forms).
std::string FormatHttpDate(int64_t unix_seconds);
std::optional<int64_t> ParseHttpDate(std::string_view text);
// <-> "2013-05-24T00:00:00.000Z" (S3 XML timestamps); millisecond precision.
std::string FormatIso8601Ms(int64_t unix_millis);

// Unsigned decimal without sign, leading '+', or overflow; nullopt otherwise.
std::optional<uint64_t> ParseUint64(std::string_view text);
// Signed decimal (optional leading '-'), no '+', whitespace or overflow; nullopt otherwise.
std::optional<int64_t> ParseInt64(std::string_view text);

// Case-insensitive ASCII comparison and lowercase conversion.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string AsciiLower(std::string_view s);
std::string_view TrimWhitespace(std::string_view s);

// Whether s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Cryptographically random bytes (getrandom(2)).
std::string RandomBytes(size_t n);
int64_t UnixSeconds();
int64_t UnixMillis();

}  // namespace vlake
