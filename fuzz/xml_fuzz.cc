// Fuzzes the S3 XML parser and writer (src/s3/xml.h).
//
// The input is parsed as a document (any status is fine, crashes and sanitizer reports are
// not). Round-trip property: valid UTF-8 text without NUL written with XmlWriter parses back
// to the same text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "s3/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlake;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  s3::XmlLimits limits;
  limits.max_bytes = 1 << 16;
  auto parsed = s3::ParseXml(input, limits);
  (void)parsed;

  if (!IsValidUtf8(input) || input.find('\0') != std::string_view::npos) return 0;
  s3::XmlWriter writer("Root");
  writer.Open("Contents");
  writer.Element("Key", input);
  writer.Close();
  auto doc = s3::ParseXml(writer.Finish());
  if (!doc.ok()) __builtin_trap();
  const s3::XmlElement* contents = doc->Child("Contents");
  if (contents == nullptr || contents->Child("Key") == nullptr ||
      contents->Child("Key")->text != input) {
    __builtin_trap();
  }
  return 0;
}
