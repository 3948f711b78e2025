#include "http/chunked.h"

#include <algorithm>
#include <cstring>

#include "http/parser.h"

namespace vlake::http {

void ChunkedDecoder::SkipData(uint64_t n) {
  VLAKE_CHECK(n <= data_remaining());
  chunk_left_ -= n;
  if (chunk_left_ == 0) state_ = State::kDataCr;
}

Status ChunkedDecoder::FinishLine() {
  if (line_.empty() || line_.back() != '\r') {
    return Error(Code::kBadRequest, "chunked line not terminated by CRLF");
  }
  line_.pop_back();
  if (state_ == State::kSizeLine) {
    std::optional<uint64_t> size = ParseChunkSizeLine(line_);
    if (!size) return Error(Code::kBadRequest, "invalid chunk size line");
    if (*size == 0) {
      state_ = State::kTrailerLine;
    } else {
      chunk_left_ = *size;
      state_ = State::kData;
    }
  } else {
    trailer_bytes_ += line_.size() + 2;
    if (trailer_bytes_ > max_trailer_bytes_) {
      return Error(Code::kBadRequest, "chunked trailers too large");
    }
    if (line_.empty()) {
      state_ = State::kDone;
    } else {
      Header h;
      VLAKE_RETURN_IF_ERROR(ParseFieldLine(line_, &h));
      trailers_.push_back(std::move(h));
    }
  }
  line_.clear();
  return Status::Ok();
}

Result<size_t> ChunkedDecoder::Decode(std::string_view in, char* out, size_t out_cap,
                                      size_t* produced) {
  *produced = 0;
  size_t i = 0;
  while (i < in.size()) {
    switch (state_) {
      case State::kSizeLine:
      case State::kTrailerLine: {
        const void* nl = std::memchr(in.data() + i, '\n', in.size() - i);
        size_t end = nl == nullptr ? in.size() : static_cast<const char*>(nl) - in.data();
        line_.append(in.data() + i, end - i);
        size_t limit = state_ == State::kSizeLine
                           ? kMaxSizeLineBytes
                           : max_trailer_bytes_ - std::min(max_trailer_bytes_, trailer_bytes_);
        // +1 for the CR that is still part of line_ here.
        if (line_.size() > limit + 1) return Error(Code::kBadRequest, "chunked line too long");
        if (nl == nullptr) return in.size();
        i = end + 1;
        VLAKE_RETURN_IF_ERROR(FinishLine());
        if (state_ == State::kDone) return i;
        break;
      }
      case State::kData: {
        size_t room = out_cap - *produced;
        if (room == 0) return i;
        size_t n =
            static_cast<size_t>(std::min<uint64_t>(chunk_left_, std::min(room, in.size() - i)));
        std::memcpy(out + *produced, in.data() + i, n);
        *produced += n;
        i += n;
        SkipData(n);
        break;
      }
      case State::kDataCr:
        if (in[i] != '\r') return Error(Code::kBadRequest, "chunk data not followed by CRLF");
        ++i;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (in[i] != '\n') return Error(Code::kBadRequest, "chunk data not followed by CRLF");
        ++i;
        state_ = State::kSizeLine;
        break;
      case State::kDone:
        return i;
    }
  }
  return i;
}

}  // namespace vlake::http
