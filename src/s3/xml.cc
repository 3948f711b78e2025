#include "s3/xml.h"

#include <charconv>
#include <utility>

#include "common/encoding.h"

namespace vlake::s3 {
namespace {

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// ASCII subset of XML NameStartChar plus every non-ASCII byte (the input is valid UTF-8; the
// exact Unicode classes do not matter for S3's fixed vocabulary).
bool IsNameStart(char c) {
  auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || u >= 0x80;
}

bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

// C0 controls other than tab, LF and CR may not appear literally in XML 1.0.
bool IsForbiddenControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 && c != '\t' && c != '\n' && c != '\r';
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Appends character data with XML line-end normalisation (CRLF and lone CR become LF).
void AppendNormalized(std::string_view data, std::string* out) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != '\r') {
      *out += data[i];
    } else {
      *out += '\n';
      if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
    }
  }
}

class Parser {
 public:
  Parser(std::string_view doc, const XmlLimits& limits) : s_(doc), limits_(limits) {}

  Result<XmlElement> Parse() {
    if (s_.size() > limits_.max_bytes) {
      return Err("document larger than " + std::to_string(limits_.max_bytes) + " bytes");
    }
    if (!IsValidUtf8(s_)) return Err("document is not valid UTF-8");
    if (StartsWith("\xEF\xBB\xBF")) pos_ += 3;
    if (StartsWith("<?xml") && s_.size() > pos_ + 5 &&
        (IsXmlSpace(s_[pos_ + 5]) || s_[pos_ + 5] == '?')) {
      VLAKE_RETURN_IF_ERROR(SkipProcessingInstruction(/*is_declaration=*/true));
    }
    VLAKE_RETURN_IF_ERROR(SkipMisc());
    if (pos_ >= s_.size()) return Err("no root element");
    if (s_[pos_] != '<' || pos_ + 1 >= s_.size() || !IsNameStart(s_[pos_ + 1])) {
      return Err("expected the root element");
    }
    XmlElement root;
    VLAKE_RETURN_IF_ERROR(ParseElement(&root, 1));
    VLAKE_RETURN_IF_ERROR(SkipMisc());
    if (pos_ != s_.size()) return Err("unexpected content after the root element");
    return root;
  }

 private:
  Status Err(std::string message) const {
    return Error(Code::kMalformedXml,
                 "The XML you provided was not well-formed or did not "
                 "validate against our published schema: " +
                     message + " (at byte " + std::to_string(pos_) + ")");
  }

  bool StartsWith(std::string_view prefix) const { return s_.substr(pos_).starts_with(prefix); }

  void SkipSpace() {
    while (pos_ < s_.size() && IsXmlSpace(s_[pos_])) ++pos_;
  }

  // Whitespace, comments and processing instructions (prolog and epilog).
  Status SkipMisc() {
    while (true) {
      SkipSpace();
      if (StartsWith("<!--")) {
        VLAKE_RETURN_IF_ERROR(SkipComment());
      } else if (StartsWith("<?")) {
        VLAKE_RETURN_IF_ERROR(SkipProcessingInstruction(/*is_declaration=*/false));
      } else if (StartsWith("<!")) {
        return Err(StartsWith("<!DOCTYPE") ? "DOCTYPE/DTD declarations are not allowed"
                                           : "unexpected markup declaration");
      } else {
        return Status::Ok();
      }
    }
  }

  Status SkipComment() {
    size_t end = s_.find("-->", pos_ + 4);
    if (end == std::string_view::npos) return Err("unterminated comment");
    pos_ = end + 3;
    return Status::Ok();
  }

  Status SkipProcessingInstruction(bool is_declaration) {
    size_t target_start = pos_ + 2;
    size_t end = s_.find("?>", target_start);
    if (end == std::string_view::npos) return Err("unterminated processing instruction");
    size_t t = target_start;
    while (t < end && IsNameChar(s_[t])) ++t;
    if (t == target_start) return Err("processing instruction without a target");
    if (!is_declaration && EqualsIgnoreCase(s_.substr(target_start, t - target_start), "xml")) {
      return Err("XML declaration not at the start of the document");
    }
    for (size_t i = t; i < end; ++i) {
      if (IsForbiddenControl(s_[i])) return Err("control character in processing instruction");
    }
    pos_ = end + 2;
    return Status::Ok();
  }

  Result<std::string_view> ParseName() {
    size_t start = pos_;
    if (pos_ >= s_.size() || !IsNameStart(s_[pos_])) return Err("expected a name");
    while (pos_ < s_.size() && IsNameChar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  // At '&': appends the referenced character.
  Status ParseReference(std::string* out) {
    size_t semi = s_.find(';', pos_ + 1);
    if (semi == std::string_view::npos || semi - pos_ > 12) return Err("unterminated entity");
    std::string_view ref = s_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (ref == "lt") {
      *out += '<';
    } else if (ref == "gt") {
      *out += '>';
    } else if (ref == "amp") {
      *out += '&';
    } else if (ref == "quot") {
      *out += '"';
    } else if (ref == "apos") {
      *out += '\'';
    } else if (ref.starts_with('#')) {
      std::string_view digits = ref.substr(1);
      int base = 10;
      if (digits.starts_with('x')) {
        digits.remove_prefix(1);
        base = 16;
      }
      uint32_t cp = 0;
      if (digits.empty()) return Err("empty character reference");
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, base);
      if (ec != std::errc() || end != digits.data() + digits.size()) {
        return Err("invalid character reference &" + std::string(ref) + ";");
      }
      // NUL, surrogates, the non-characters U+FFFE/U+FFFF and anything past U+10FFFF are not
      // characters. Other C0 controls are accepted: S3 writes them this way.
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF ||
          cp > 0x10FFFF) {
        return Err("character reference to an invalid code point &" + std::string(ref) + ";");
      }
      AppendUtf8(cp, out);
    } else {
      return Err("undefined entity &" + std::string(ref) +
                 "; (only the predefined entities and character references are allowed)");
    }
    return Status::Ok();
  }

  // After the element name: attributes up to '>' (returns false) or '/>' (returns true).
  Result<bool> ParseAttributes() {
    std::string scratch;
    while (true) {
      size_t before = pos_;
      SkipSpace();
      if (pos_ >= s_.size()) return Err("unterminated start tag");
      if (StartsWith("/>")) {
        pos_ += 2;
        return true;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        return false;
      }
      if (pos_ == before) return Err("expected whitespace before an attribute");
      VLAKE_ASSIGN_OR_RETURN(std::string_view attr_name, ParseName());
      (void)attr_name;  // S3 ignores attributes (xmlns included)
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '=') return Err("expected '=' after attribute name");
      ++pos_;
      SkipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
        return Err("attribute value must be quoted");
      }
      char quote = s_[pos_++];
      while (true) {
        if (pos_ >= s_.size()) return Err("unterminated attribute value");
        char c = s_[pos_];
        if (c == quote) break;
        if (c == '<') return Err("'<' in attribute value");
        if (IsForbiddenControl(c)) return Err("control character in attribute value");
        if (c == '&') {
          scratch.clear();
          VLAKE_RETURN_IF_ERROR(ParseReference(&scratch));
        } else {
          ++pos_;
        }
      }
      ++pos_;
    }
  }

  // At '<' of a start tag.
  Status ParseElement(XmlElement* out, size_t depth) {
    if (depth > limits_.max_depth) {
      return Err("elements nested deeper than " + std::to_string(limits_.max_depth));
    }
    if (++elements_ > limits_.max_elements) {
      return Err("more than " + std::to_string(limits_.max_elements) + " elements");
    }
    ++pos_;
    VLAKE_ASSIGN_OR_RETURN(std::string_view qname, ParseName());
    size_t colon = qname.rfind(':');
    std::string_view local = colon == std::string_view::npos ? qname : qname.substr(colon + 1);
    if (local.empty() || !IsNameStart(local.front()) || local.front() == ':') {
      return Err("invalid element name '" + std::string(qname) + "'");
    }
    out->name = std::string(local);
    VLAKE_ASSIGN_OR_RETURN(bool empty, ParseAttributes());
    if (empty) return Status::Ok();

    while (true) {
      if (pos_ >= s_.size()) return Err("unterminated element <" + std::string(qname) + ">");
      char c = s_[pos_];
      if (c == '<') {
        if (StartsWith("</")) {
          pos_ += 2;
          VLAKE_ASSIGN_OR_RETURN(std::string_view end_name, ParseName());
          if (end_name != qname) {
            return Err("end tag </" + std::string(end_name) + "> does not match <" +
                       std::string(qname) + ">");
          }
          SkipSpace();
          if (pos_ >= s_.size() || s_[pos_] != '>') return Err("unterminated end tag");
          ++pos_;
          return Status::Ok();
        }
        if (StartsWith("<!--")) {
          VLAKE_RETURN_IF_ERROR(SkipComment());
        } else if (StartsWith("<![CDATA[")) {
          size_t end = s_.find("]]>", pos_ + 9);
          if (end == std::string_view::npos) return Err("unterminated CDATA section");
          std::string_view data = s_.substr(pos_ + 9, end - pos_ - 9);
          for (char d : data) {
            if (IsForbiddenControl(d)) return Err("control character in CDATA");
          }
          AppendNormalized(data, &out->text);
          pos_ = end + 3;
        } else if (StartsWith("<?")) {
          VLAKE_RETURN_IF_ERROR(SkipProcessingInstruction(/*is_declaration=*/false));
        } else if (StartsWith("<!")) {
          return Err(StartsWith("<!DOCTYPE") ? "DOCTYPE/DTD declarations are not allowed"
                                             : "unexpected markup declaration");
        } else {
          out->children.emplace_back();
          VLAKE_RETURN_IF_ERROR(ParseElement(&out->children.back(), depth + 1));
        }
      } else if (c == '&') {
        VLAKE_RETURN_IF_ERROR(ParseReference(&out->text));
      } else {
        size_t start = pos_;
        while (pos_ < s_.size() && s_[pos_] != '<' && s_[pos_] != '&') {
          if (IsForbiddenControl(s_[pos_])) return Err("control character in text");
          ++pos_;
        }
        std::string_view data = s_.substr(start, pos_ - start);
        if (data.find("]]>") != std::string_view::npos) return Err("']]>' in text");
        AppendNormalized(data, &out->text);
      }
    }
  }

  std::string_view s_;
  const XmlLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& child : children) {
    if (child.name == child_name) return &child;
  }
  return nullptr;
}

std::vector<const XmlElement*> XmlElement::Children(std::string_view child_name) const {
  std::vector<const XmlElement*> out;
  for (const XmlElement& child : children) {
    if (child.name == child_name) out.push_back(&child);
  }
  return out;
}

Result<XmlElement> ParseXml(std::string_view doc, const XmlLimits& limits) {
  return Parser(doc, limits).Parse();
}

void AppendXmlEscaped(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '&' && c != '<' && c != '>' && c != '"') continue;
    out->append(text.substr(run_start, i - run_start));
    run_start = i + 1;
    switch (c) {
      case '&':
        out->append("&amp;");
        break;
      case '<':
        out->append("&lt;");
        break;
      case '>':
        out->append("&gt;");
        break;
      case '"':
        out->append("&quot;");
        break;
      case '\t':
        out->append("&#9;");
        break;
      case '\n':
        out->append("&#10;");
        break;
      case '\r':
        out->append("&#13;");
        break;
      default:
        out->append("&#x");
        if (c >= 0x10) *out += kHex[c >> 4];
        *out += kHex[c & 15];
        *out += ';';
        break;
    }
  }
  out->append(text.substr(run_start));
}

XmlWriter::XmlWriter(std::string_view root, std::string_view xmlns) {
  out_.reserve(512);
  out_.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<").append(root);
  if (!xmlns.empty()) {
    out_.append(" xmlns=\"");
    AppendXmlEscaped(xmlns, &out_);
    out_ += '"';
  }
  out_ += '>';
  stack_names_.append(root);
  stack_ends_.push_back(static_cast<uint32_t>(stack_names_.size()));
}

void XmlWriter::OpenTag(std::string_view name) { out_.append(1, '<').append(name).append(1, '>'); }

void XmlWriter::CloseTag(std::string_view name) { out_.append("</").append(name).append(1, '>'); }

void XmlWriter::Open(std::string_view name) {
  OpenTag(name);
  stack_names_.append(name);
  stack_ends_.push_back(static_cast<uint32_t>(stack_names_.size()));
}

void XmlWriter::Close() {
  VLAKE_CHECK(stack_ends_.size() > 1);
  stack_ends_.pop_back();
  size_t start = stack_ends_.back();
  CloseTag(std::string_view(stack_names_).substr(start));
  stack_names_.resize(start);
}

void XmlWriter::Element(std::string_view name, std::string_view text) {
  OpenTag(name);
  AppendXmlEscaped(text, &out_);
  CloseTag(name);
}

void XmlWriter::ElementInt(std::string_view name, int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  (void)ec;  // 24 bytes always fit an int64
  Element(name, std::string_view(buf, static_cast<size_t>(end - buf)));
}

void XmlWriter::ElementBool(std::string_view name, bool value) {
  Element(name, value ? "true" : "false");
}

std::string XmlWriter::Finish() {
  while (stack_ends_.size() > 1) Close();
  if (!stack_ends_.empty()) {
    CloseTag(std::string_view(stack_names_).substr(0, stack_ends_.back()));
    stack_ends_.clear();
    stack_names_.clear();
  }
  return std::move(out_);
}

}  // namespace vlake::s3
