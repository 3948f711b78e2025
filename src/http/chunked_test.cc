#include "http/chunked.h"

#include <gtest/gtest.h>

#include <string>

namespace vlake::http {
namespace {

struct Decoded {
  Status status;
  std::string payload;
  size_t consumed = 0;
  bool done = false;
  std::vector<Header> trailers;
};

// Feeds `wire` in pieces of `step` bytes with an output buffer of `out_cap` bytes.
Decoded DecodeInSteps(std::string_view wire, size_t step, size_t out_cap) {
  Decoded d;
  ChunkedDecoder decoder;
  std::string out(out_cap, '\0');
  size_t fed_end = 0;
  size_t pos = 0;
  while (!decoder.done()) {
    if (pos == fed_end) {
      if (fed_end == wire.size()) break;
      fed_end = std::min(wire.size(), fed_end + step);
    }
    size_t produced = 0;
    Result<size_t> used =
        decoder.Decode(wire.substr(pos, fed_end - pos), out.data(), out.size(), &produced);
    if (!used.ok()) {
      d.status = used.error();
      return d;
    }
    d.payload.append(out.data(), produced);
    pos += *used;
  }
  d.consumed = pos;
  d.done = decoder.done();
  d.trailers = decoder.trailers();
  return d;
}

constexpr std::string_view kWire =
    "5\r\nhello\r\n1;ext=1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\n"
    "X-Amz-Checksum-Crc32: sOO8/Q==\r\nX-Other:  v \r\n\r\nNEXT";

TEST(ChunkedDecoderTest, DecodesAtEverySplit) {
  for (size_t step : {1, 2, 3, 7, 64, 1000}) {
    for (size_t cap : {1, 4, 1000}) {
      Decoded d = DecodeInSteps(kWire, step, cap);
      ASSERT_TRUE(d.status.ok()) << d.status.ToString() << " step " << step;
      EXPECT_TRUE(d.done);
      EXPECT_EQ(d.payload, "hello 0123456789abcdef");
      EXPECT_EQ(d.consumed, kWire.size() - 4) << "must stop before the next message";
      ASSERT_EQ(d.trailers.size(), 2u);
      EXPECT_EQ(d.trailers[0].name, "x-amz-checksum-crc32");
      EXPECT_EQ(d.trailers[0].value, "sOO8/Q==");
      EXPECT_EQ(d.trailers[1].value, "v");
    }
  }
}

TEST(ChunkedDecoderTest, SkipDataLetsCallersReadChunksDirectly) {
  ChunkedDecoder decoder;
  char out[8];
  size_t produced = 0;
  ASSERT_EQ(*decoder.Decode("a\r\n", out, sizeof(out), &produced), 3u);
  EXPECT_EQ(decoder.data_remaining(), 10u);
  decoder.SkipData(10);  // the caller read the 10 bytes itself
  EXPECT_EQ(decoder.data_remaining(), 0u);
  ASSERT_EQ(*decoder.Decode("\r\n0\r\n\r\n", out, sizeof(out), &produced), 7u);
  EXPECT_TRUE(decoder.done());
}

TEST(ChunkedDecoderTest, RejectsBrokenFraming) {
  for (std::string_view wire : {
           std::string_view("5\r\nhelloX\r\n0\r\n\r\n"),  // data longer than its size
           std::string_view("5\nhello\r\n0\r\n\r\n"),     // bare LF after the size
           std::string_view("5\r\nhello\n0\r\n\r\n"),     // bare LF after the data
           std::string_view("z\r\n"),                     // not hex
           std::string_view("\r\n"),                      // empty size
           std::string_view("0\r\nbad trailer\r\n\r\n"),  // no colon
           std::string_view("0\r\nA: 1\r\n folded\r\n\r\n"),
           std::string_view("0\r\nA: 1\r\r\n\r\n"),
           std::string_view("ffffffffffffffffff\r\n"),
       }) {
    Decoded d = DecodeInSteps(wire, 1, 16);
    EXPECT_EQ(d.status.code(), Code::kBadRequest) << wire;
    Decoded whole = DecodeInSteps(wire, wire.size(), 16);
    EXPECT_EQ(whole.status.code(), Code::kBadRequest) << wire;
  }
}

TEST(ChunkedDecoderTest, LimitsLineAndTrailerSizes) {
  std::string long_ext = "1;a=" + std::string(ChunkedDecoder::kMaxSizeLineBytes, 'x') + "\r\n";
  EXPECT_EQ(DecodeInSteps(long_ext, 100, 16).status.code(), Code::kBadRequest);

  std::string trailers = "0\r\n";
  for (int i = 0; i < 200; ++i) trailers += "x-field-" + std::to_string(i) + ": value\r\n";
  trailers += "\r\n";
  ChunkedDecoder small(256);
  char out[4];
  size_t produced = 0;
  EXPECT_EQ(small.Decode(trailers, out, sizeof(out), &produced).status().code(), Code::kBadRequest);
  ChunkedDecoder roomy(1 << 20);
  EXPECT_TRUE(roomy.Decode(trailers, out, sizeof(out), &produced).ok());
  EXPECT_TRUE(roomy.done());
  EXPECT_EQ(roomy.trailers().size(), 200u);
}

TEST(ChunkedDecoderTest, IncompleteInputIsNotDone) {
  Decoded d = DecodeInSteps("5\r\nhel", 100, 16);
  EXPECT_TRUE(d.status.ok());
  EXPECT_FALSE(d.done);
  EXPECT_EQ(d.payload, "hel");
}

}  // namespace
}  // namespace vlake::http
