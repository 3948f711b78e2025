#include "s3/aws_chunked.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "common/encoding.h"

namespace vlake::s3 {
namespace {

// Reads straight into the caller's buffer (skipping the input buffer) when at least this much
// chunk data is wanted and nothing is buffered: large uploads then cost no extra copy.
constexpr size_t kDirectReadBytes = 16 * 1024;

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return HexDigitValue(c) >= 0; });
}

bool IsSignedMode(AwsChunkedMode mode) { return mode != AwsChunkedMode::kUnsignedTrailer; }

Status Framing(std::string message) {
  return Error(Code::kInvalidRequest, "malformed aws-chunked body: " + std::move(message));
}

Status Trailer(std::string message) {
  return Error(Code::kMalformedTrailer, "malformed aws-chunked trailer: " + std::move(message));
}

// A BodyReader over borrowed bytes (DecodeAwsChunked); never copies the input.
class ViewReader final : public http::BodyReader {
 public:
  explicit ViewReader(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t take = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  std::optional<uint64_t> Length() const override { return data_.size(); }
  const std::vector<http::Header>& Trailers() const override { return no_trailers_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  std::vector<http::Header> no_trailers_;
};

}  // namespace

Result<AwsChunkedConfig> AwsChunkedConfigFor(const AuthResult& auth,
                                             std::optional<uint64_t> decoded_length) {
  AwsChunkedConfig config;
  switch (auth.payload) {
    case PayloadMode::kStreamingSigned:
      config.mode = AwsChunkedMode::kSigned;
      break;
    case PayloadMode::kStreamingSignedTrailer:
      config.mode = AwsChunkedMode::kSignedTrailer;
      break;
    case PayloadMode::kStreamingUnsignedTrailer:
      config.mode = AwsChunkedMode::kUnsignedTrailer;
      break;
    default:
      return Error(Code::kInvalidArgument, "the payload is not an aws-chunked streaming mode");
  }
  if (IsSignedMode(config.mode) && (auth.anonymous || auth.signing_key.empty())) {
    return Error(Code::kInvalidArgument, "signed aws-chunked payload on an unsigned request");
  }
  config.signing_key = auth.signing_key;
  config.amz_date = auth.amz_date;
  config.scope = auth.scope;
  config.seed_signature = auth.seed_signature;
  config.decoded_length = decoded_length;
  return config;
}

AwsChunkedReader::AwsChunkedReader(http::BodyReader& inner, AwsChunkedConfig config)
    : inner_(&inner), config_(std::move(config)), previous_signature_(config_.seed_signature) {
  config_.input_buffer_bytes = std::max<size_t>(config_.input_buffer_bytes, 1);
}

Status AwsChunkedReader::Fail(Status status) {
  state_ = State::kFailed;
  failure_ = status;
  return status;
}

Result<bool> AwsChunkedReader::Fill() {
  if (input_pos_ < input_len_) return true;
  VLAKE_ASSIGN_OR_RETURN(size_t got, inner_->Read(input_.get(), config_.input_buffer_bytes));
  input_pos_ = 0;
  input_len_ = got;
  return got > 0;
}

Result<bool> AwsChunkedReader::NextLine(size_t max_bytes, Code too_long_code, LineEnd line_end) {
  while (true) {
    VLAKE_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return false;
    const char* start = input_.get() + input_pos_;
    size_t avail = input_len_ - input_pos_;
    const void* nl = std::memchr(start, '\n', avail);
    size_t take = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - start) : avail;
    // +1: the '\r' that ends a line of exactly max_bytes.
    if (line_.size() + take > max_bytes + 1) {
      return Error(too_long_code,
                   "aws-chunked line longer than " + std::to_string(max_bytes) + " bytes");
    }
    line_.append(start, take);
    input_pos_ += take;
    if (nl == nullptr) continue;
    ++input_pos_;  // the '\n'
    if (!line_.empty() && line_.back() == '\r') {
      line_.pop_back();
    } else if (line_end == LineEnd::kCrlf) {
      return Error(too_long_code, "aws-chunked line not terminated by CRLF");
    }
    if (line_.find('\r') != std::string::npos) {
      return Error(too_long_code, "stray CR inside an aws-chunked line");
    }
    return true;
  }
}

Status AwsChunkedReader::OnSizeLine() {
  std::string_view line = line_;
  uint64_t size = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    int digit = HexDigitValue(line[i]);
    if (digit < 0) break;
    if (size > (std::numeric_limits<uint64_t>::max() >> 4)) {
      return Framing("chunk size overflows 64 bits");
    }
    size = size << 4 | static_cast<uint64_t>(digit);
  }
  if (i == 0) return Framing("chunk size line does not start with a hex size");
  std::optional<std::string_view> signature;
  std::string_view rest = line.substr(i);
  while (!rest.empty()) {
    if (rest.front() != ';') return Framing("unexpected character after the chunk size");
    rest.remove_prefix(1);
    size_t semi = rest.find(';');
    std::string_view ext = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi);
    size_t eq = ext.find('=');
    if (ext.substr(0, eq) != "chunk-signature") continue;  // unknown extensions are ignored
    if (signature) return Framing("duplicate chunk-signature");
    signature = eq == std::string_view::npos ? std::string_view() : ext.substr(eq + 1);
  }
  if (IsSignedMode(config_.mode)) {
    if (!signature) return Framing("chunk without chunk-signature in a signed upload");
    if (!IsHex64(*signature)) return Framing("chunk-signature is not 64 hex digits");
    chunk_signature_ = AsciiLower(*signature);
  }
  if (size > std::numeric_limits<uint64_t>::max() - declared_total_) {
    return Framing("total chunk size overflows 64 bits");
  }
  declared_total_ += size;
  if (config_.decoded_length && declared_total_ > *config_.decoded_length) {
    return Framing("chunks exceed x-amz-decoded-content-length (" +
                   std::to_string(*config_.decoded_length) + ")");
  }
  line_.clear();
  chunk_size_ = size;
  chunk_remaining_ = size;
  if (size > 0) {
    state_ = State::kData;
    return Status::Ok();
  }
  if (config_.decoded_length && declared_total_ < *config_.decoded_length) {
    return Error(Code::kIncompleteBody, "aws-chunked body has " + std::to_string(declared_total_) +
                                            " bytes but x-amz-decoded-content-length says " +
                                            std::to_string(*config_.decoded_length));
  }
  VLAKE_RETURN_IF_ERROR(FinishChunk());
  state_ = config_.mode == AwsChunkedMode::kSigned ? State::kFinalCrlf : State::kTrailers;
  return Status::Ok();
}

Status AwsChunkedReader::FinishChunk() {
  if (!IsSignedMode(config_.mode)) return Status::Ok();
  std::string expected = ChunkSignature(config_.signing_key, config_.amz_date, config_.scope,
                                        previous_signature_, HexEncode(chunk_hash_.Final()));
  if (!ConstantTimeEquals(expected, chunk_signature_)) {
    return Error(Code::kSignatureDoesNotMatch,
                 "aws-chunked chunk signature does not match (chunk of " +
                     std::to_string(chunk_size_) + " bytes ending at offset " +
                     std::to_string(declared_total_) + ")");
  }
  previous_signature_ = std::move(chunk_signature_);
  chunk_signature_.clear();
  return Status::Ok();
}

Status AwsChunkedReader::OnTrailerLine() {
  std::string_view line = line_;
  trailer_bytes_ += line.size() + 2;
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Trailer("line without ':'");
  std::string name = AsciiLower(TrimWhitespace(line.substr(0, colon)));
  if (name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
      })) {
    return Trailer("invalid trailer name");
  }
  std::string value(TrimWhitespace(line.substr(colon + 1)));
  if (name == "x-amz-trailer-signature") {
    // Meaningless without signatures; an unsigned-trailer body carrying one is tolerated.
    if (config_.mode != AwsChunkedMode::kSignedTrailer) return Status::Ok();
    if (trailer_signature_) return Trailer("duplicate x-amz-trailer-signature");
    trailer_signature_ = std::move(value);
    return Status::Ok();
  }
  if (trailer_signature_) return Trailer("trailer after x-amz-trailer-signature");
  trailer_canonical_.append(name).append(1, ':').append(value).append(1, '\n');
  trailers_.push_back({std::move(name), std::move(value)});
  return Status::Ok();
}

Status AwsChunkedReader::FinishTrailers() {
  if (config_.mode != AwsChunkedMode::kSignedTrailer) return Status::Ok();
  if (!trailer_signature_) {
    // Nothing unauthenticated was received; accept a signed-trailer upload without trailers.
    if (trailers_.empty()) return Status::Ok();
    return Trailer("missing x-amz-trailer-signature");
  }
  if (!IsHex64(*trailer_signature_)) return Trailer("x-amz-trailer-signature is not 64 hex");
  std::string expected =
      TrailerSignature(config_.signing_key, config_.amz_date, config_.scope, previous_signature_,
                       HexEncode(Sha256Digest(trailer_canonical_)));
  if (!ConstantTimeEquals(expected, AsciiLower(*trailer_signature_))) {
    return Error(Code::kSignatureDoesNotMatch, "aws-chunked trailer signature does not match");
  }
  return Status::Ok();
}

Status AwsChunkedReader::DrainEnd() {
  // The inner stream must end here; reading it to the end also lets the connection be reused.
  while (true) {
    while (input_pos_ < input_len_) {
      char c = input_[input_pos_++];
      if ((c != '\r' && c != '\n') || ++stray_bytes_ > 2) {
        return Framing("unexpected bytes after the end of the body");
      }
    }
    VLAKE_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) return Status::Ok();
  }
}

Result<size_t> AwsChunkedReader::Read(char* buf, size_t n) {
  VLAKE_CHECK(n > 0);
  if (!input_ && state_ != State::kFailed) {
    input_ = std::make_unique<char[]>(config_.input_buffer_bytes);
  }
  while (true) {
    switch (state_) {
      case State::kFailed:
        return failure_;
      case State::kEof:
        return size_t{0};
      case State::kSizeLine: {
        Result<bool> got = NextLine(kMaxChunkLineBytes, Code::kInvalidRequest, LineEnd::kCrlf);
        if (!got) return Fail(got.error());
        if (!*got) {
          return Fail(
              Error(Code::kIncompleteBody, "aws-chunked body ended before its final chunk"));
        }
        Status s = OnSizeLine();
        if (!s.ok()) return Fail(std::move(s));
        break;
      }
      case State::kData: {
        size_t want = static_cast<size_t>(std::min<uint64_t>(n, chunk_remaining_));
        size_t got = 0;
        if (input_pos_ == input_len_ && want >= kDirectReadBytes) {
          Result<size_t> r = inner_->Read(buf, want);
          if (!r) return Fail(r.error());
          got = *r;
        } else {
          Result<bool> more = Fill();
          if (!more) return Fail(more.error());
          if (*more) {
            got = std::min(want, input_len_ - input_pos_);
            std::memcpy(buf, input_.get() + input_pos_, got);
            input_pos_ += got;
          }
        }
        if (got == 0) {
          return Fail(Error(Code::kIncompleteBody, "aws-chunked body ended inside a chunk"));
        }
        if (IsSignedMode(config_.mode)) chunk_hash_.Update(buf, got);
        chunk_remaining_ -= got;
        if (chunk_remaining_ == 0) {
          // Verified before the chunk's last bytes reach the caller (see the header).
          Status s = FinishChunk();
          if (!s.ok()) return Fail(std::move(s));
          state_ = State::kDataCrlf;
        }
        return got;
      }
      case State::kDataCrlf: {
        Result<bool> more = Fill();
        if (!more) return Fail(more.error());
        if (!*more) {
          return Fail(Error(Code::kIncompleteBody, "aws-chunked body ended after chunk data"));
        }
        char c = input_[input_pos_++];
        if (c != (crlf_seen_ == 0 ? '\r' : '\n')) {
          return Fail(Framing("chunk data not followed by CRLF"));
        }
        if (++crlf_seen_ == 2) {
          crlf_seen_ = 0;
          state_ = State::kSizeLine;
        }
        break;
      }
      case State::kTrailers: {
        Result<bool> got = NextLine(kMaxTrailerBytes - std::min(trailer_bytes_, kMaxTrailerBytes),
                                    Code::kMalformedTrailer, LineEnd::kCrlfOrLf);
        if (!got) return Fail(got.error());
        bool at_end = !*got;  // the stream ended without the closing empty line (tolerated)
        if (line_.empty() && !at_end && config_.mode == AwsChunkedMode::kSignedTrailer &&
            !trailers_.empty() && !trailer_signature_ && !skipped_blank_line_) {
          // minio-go ends its trailer lines with LF and puts a blank line before the signature.
          skipped_blank_line_ = true;
          trailer_bytes_ += 2;
          break;
        }
        if (!line_.empty()) {
          if (at_end && line_.back() == '\r') line_.pop_back();
          Status s = OnTrailerLine();
          line_.clear();
          if (!s.ok()) return Fail(std::move(s));
          if (!at_end) break;
        }
        Status s = FinishTrailers();
        if (!s.ok()) return Fail(std::move(s));
        state_ = at_end ? State::kEof : State::kDone;
        break;
      }
      case State::kFinalCrlf: {
        Result<bool> got = NextLine(kMaxTrailerBytes, Code::kMalformedTrailer, LineEnd::kCrlfOrLf);
        if (!got) return Fail(got.error());
        if (!line_.empty()) {
          return Fail(
              Trailer("trailers are not allowed with " + std::string(kStreamingSignedPayload)));
        }
        state_ = *got ? State::kDone : State::kEof;
        break;
      }
      case State::kDone: {
        Status s = DrainEnd();
        if (!s.ok()) return Fail(std::move(s));
        state_ = State::kEof;
        break;
      }
    }
  }
}

Result<std::string> DecodeAwsChunked(std::string_view encoded, const AwsChunkedConfig& config,
                                     size_t read_size, std::vector<http::Header>* trailers,
                                     size_t max_output_bytes) {
  ViewReader inner(encoded);
  AwsChunkedReader reader(inner, config);
  read_size = std::max<size_t>(read_size, 1);
  std::string out;
  std::string buf(read_size, '\0');
  while (true) {
    VLAKE_ASSIGN_OR_RETURN(size_t got, reader.Read(buf.data(), buf.size()));
    if (got == 0) break;
    if (out.size() + got > max_output_bytes) {
      return Error(Code::kEntityTooLarge, "decoded aws-chunked body exceeds the limit");
    }
    out.append(buf.data(), got);
  }
  if (trailers != nullptr) *trailers = reader.Trailers();
  return out;
}

std::string EncodeAwsChunked(std::string_view data, size_t chunk_size,
                             const AwsChunkedConfig& config,
                             std::span<const http::Header> trailers) {
  VLAKE_CHECK(chunk_size > 0);
  const bool is_signed = IsSignedMode(config.mode);
  std::string previous = config.seed_signature;
  std::string out;
  out.reserve(data.size() + (data.size() / chunk_size + 2) * 90);
  auto chunk_header = [&](std::string_view chunk) {
    char hex[24];
    int len = std::snprintf(hex, sizeof(hex), "%zx", chunk.size());
    out.append(hex, static_cast<size_t>(len));
    if (is_signed) {
      previous = ChunkSignature(config.signing_key, config.amz_date, config.scope, previous,
                                HexEncode(Sha256Digest(chunk)));
      out.append(";chunk-signature=").append(previous);
    }
    out.append("\r\n");
  };
  for (size_t pos = 0; pos < data.size(); pos += chunk_size) {
    std::string_view chunk = data.substr(pos, chunk_size);
    chunk_header(chunk);
    out.append(chunk).append("\r\n");
  }
  chunk_header({});
  if (config.mode != AwsChunkedMode::kSigned && !trailers.empty()) {
    std::string canonical;
    for (const http::Header& h : trailers) {
      canonical.append(h.name).append(1, ':').append(h.value).append(1, '\n');
      out.append(h.name).append(1, ':').append(h.value).append("\r\n");
    }
    if (is_signed) {
      out.append("x-amz-trailer-signature:")
          .append(TrailerSignature(config.signing_key, config.amz_date, config.scope, previous,
                                   HexEncode(Sha256Digest(canonical))))
          .append("\r\n");
    }
  }
  out.append("\r\n");
  return out;
}

}  // namespace vlake::s3
