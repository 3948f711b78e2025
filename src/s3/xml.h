// XML for the S3 surface: a small strict parser for request bodies (CompleteMultipartUpload,
// Delete, Tagging, CreateBucketConfiguration, ...) and a writer for response bodies.
//
// The parser builds a tree of elements with namespace prefixes stripped; attributes (xmlns
// and others) are checked for syntax and dropped, as S3 ignores them. It is deliberately not a
// general XML processor: any DOCTYPE/DTD and every entity other than the five predefined ones
// and numeric character references are rejected, which rules out XXE and entity expansion.
// Bounds (input size, depth, element count) are enforced while parsing, so hostile input costs
// at most O(input) time and memory. Every rejection is kMalformedXml with a message naming
// what is wrong (S3 answers MalformedXML).
//
// The writer appends to one string: no per-element allocation beyond the open-element stack.
//
// Thread-safety: ParseXml is a pure function; an XmlWriter belongs to one thread.
// Ownership: XmlElement trees own their strings; Child()/Children() pointers point into the
// tree and live as long as it does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vlake::s3 {

inline constexpr std::string_view kS3XmlNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";

struct XmlElement {
  std::string name;  // local name ("Part" for both <Part> and <s3:Part>)
  // The element's own character data, entity-decoded, CDATA included, concatenated in order;
  // whitespace is kept as is (S3 keys may start or end with spaces). Children's text is not
  // included.
  std::string text;
  std::vector<XmlElement> children;  // in document order

  // First child with this local name, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  // All children with this local name, in order.
  std::vector<const XmlElement*> Children(std::string_view child_name) const;
};

struct XmlLimits {
  size_t max_bytes = 4 << 20;    // a Delete of 1000 keys of 1024 bytes fits with room to spare
  size_t max_depth = 64;         // S3 bodies nest 3-4 deep
  size_t max_elements = 100000;  // bounds the tree's memory (~100 B per element)
};

// Parses one document: optional BOM and XML declaration, comments and processing
// instructions around one root element. The input must be valid UTF-8.
Result<XmlElement> ParseXml(std::string_view doc, const XmlLimits& limits = {});

// Writes a response document:
//   XmlWriter w("ListAllMyBucketsResult");
//   w.Open("Buckets"); w.Open("Bucket"); w.Element("Name", name); w.Close(); w.Close();
//   std::string body = w.Finish();
// Names are written verbatim (callers pass constants); text is escaped (EscapeXmlText).
class XmlWriter {
 public:
  // Writes the declaration and opens `root`, with an xmlns attribute unless `xmlns` is empty.
  explicit XmlWriter(std::string_view root, std::string_view xmlns = kS3XmlNamespace);

  void Open(std::string_view name);
  // Closes the innermost open element (never the root; Finish closes it).
  void Close();
  // <name>escaped text</name>
  void Element(std::string_view name, std::string_view text);
  void ElementInt(std::string_view name, int64_t value);
  void ElementBool(std::string_view name, bool value);  // "true" / "false"
  // Closes every open element and the root, and returns the document; the writer is spent.
  std::string Finish();

 private:
  void OpenTag(std::string_view name);
  void CloseTag(std::string_view name);

  std::string out_;
  std::string stack_names_;           // open element names, concatenated
  std::vector<uint32_t> stack_ends_;  // end offset of each name in stack_names_
};

// Escapes text content: & < > " as entities, \t \n \r as &#9; &#10; &#13; (so they survive
// parsing unchanged) and the other C0 controls as &#x1; ... (which XML 1.0 forbids but S3
// emits for such keys without encoding-type=url, and ParseXml accepts).
void AppendXmlEscaped(std::string_view text, std::string* out);

}  // namespace vlake::s3
