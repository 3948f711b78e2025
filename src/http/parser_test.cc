#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace vlake::http {
namespace {

constexpr size_t kLimit = 64 * 1024;

// Parses a complete head; fails the test unless it is kDone.
HttpRequest ParseOk(std::string_view text, size_t* consumed = nullptr) {
  HttpRequest req;
  size_t used = 0;
  Result<ParseState> r = ParseRequestHead(text, kLimit, &req, &used);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " for " << text;
  if (r.ok()) {
    EXPECT_EQ(*r, ParseState::kDone) << text;
  }
  if (consumed != nullptr) *consumed = used;
  return req;
}

Code ParseError(std::string_view text, size_t limit = kLimit) {
  HttpRequest req;
  size_t used = 0;
  Result<ParseState> r = ParseRequestHead(text, limit, &req, &used);
  if (r.ok()) {
    ADD_FAILURE() << "accepted: " << text;
    return Code::kOk;
  }
  return r.error().code();
}

TEST(ParserTest, SimpleGet) {
  size_t consumed = 0;
  std::string text =
      "GET /bucket/key%20x?versionId=3&x HTTP/1.1\r\nHost: example.com\r\n"
      "X-Amz-Date:  20130524T000000Z \r\n\r\n";
  HttpRequest req = ParseOk(text, &consumed);
  EXPECT_EQ(consumed, text.size());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/bucket/key%20x?versionId=3&x");
  EXPECT_EQ(req.path, "/bucket/key%20x");
  EXPECT_EQ(req.query, "versionId=3&x");
  EXPECT_EQ(req.version_minor, 1);
  ASSERT_EQ(req.headers.size(), 2u);
  EXPECT_EQ(req.headers[1].name, "x-amz-date");
  EXPECT_EQ(req.headers[1].value, "20130524T000000Z");
  EXPECT_EQ(req.HeaderOr("host", ""), "example.com");
  EXPECT_EQ(req.FindHeader("missing"), nullptr);
  EXPECT_EQ(req.HeaderValues("missing"), "");
  EXPECT_TRUE(req.keep_alive);
  EXPECT_FALSE(req.chunked);
  EXPECT_FALSE(req.content_length.has_value());
}

TEST(ParserTest, BareLfAndLeadingEmptyLines) {
  size_t consumed = 0;
  std::string text = "\r\n\nPUT /b HTTP/1.1\nContent-Length: 5\n\nhello";
  HttpRequest req = ParseOk(text, &consumed);
  EXPECT_EQ(consumed, text.size() - 5);
  EXPECT_EQ(req.content_length, 5u);
}

TEST(ParserTest, NeedMoreUntilEmptyLine) {
  std::string text = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t n = 0; n < text.size(); ++n) {
    HttpRequest req;
    size_t used = 0;
    Result<ParseState> r =
        ParseRequestHead(std::string_view(text).substr(0, n), kLimit, &req, &used);
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(*r, ParseState::kNeedMore) << n;
  }
}

TEST(ParserTest, PipelinedHeadsAreParsedOneAfterAnother) {
  std::string text =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\n";
  std::string_view rest = text;
  HttpRequest req;
  size_t used = 0;
  ASSERT_EQ(*ParseRequestHead(rest, kLimit, &req, &used), ParseState::kDone);
  EXPECT_EQ(req.path, "/a");
  rest.remove_prefix(used);
  ASSERT_EQ(*ParseRequestHead(rest, kLimit, &req, &used), ParseState::kDone);
  EXPECT_EQ(req.path, "/b");
  rest.remove_prefix(used);
  EXPECT_EQ(*ParseRequestHead(rest, kLimit, &req, &used), ParseState::kNeedMore);
  EXPECT_EQ(rest, "GET /c HTTP/1.1\r\n");
}

TEST(ParserTest, ReusedRequestIsReset) {
  HttpRequest req;
  size_t used = 0;
  ASSERT_TRUE(ParseRequestHead("PUT /a?q HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: "
                               "100-continue\r\nA: 1\r\nB: 2\r\n\r\n",
                               kLimit, &req, &used)
                  .ok());
  EXPECT_TRUE(req.chunked);
  EXPECT_TRUE(req.expect_continue);
  ASSERT_TRUE(ParseRequestHead("GET /b HTTP/1.1\r\nC: 3\r\n\r\n", kLimit, &req, &used).ok());
  EXPECT_FALSE(req.chunked);
  EXPECT_FALSE(req.expect_continue);
  EXPECT_EQ(req.query, "");
  ASSERT_EQ(req.headers.size(), 1u);
  EXPECT_EQ(req.headers[0].name, "c");
}

TEST(ParserTest, RepeatedFieldsStaySeparate) {
  HttpRequest req = ParseOk("GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
  EXPECT_EQ(*req.FindHeader("x-a"), "1");
  EXPECT_EQ(req.HeaderValues("x-a"), "1,2");
}

TEST(ParserTest, Http10KeepAliveRules) {
  EXPECT_FALSE(ParseOk("GET / HTTP/1.0\r\n\r\n").keep_alive);
  HttpRequest ka = ParseOk("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  EXPECT_TRUE(ka.keep_alive);
  EXPECT_EQ(ka.version_minor, 0);
  EXPECT_FALSE(ParseOk("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").keep_alive);
  EXPECT_FALSE(ParseOk("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

TEST(ParserTest, FramingHeaders) {
  HttpRequest r = ParseOk("PUT / HTTP/1.1\r\nContent-Length: 10\r\ncontent-length: 10\r\n\r\n");
  EXPECT_EQ(r.content_length, 10u);
  r = ParseOk("PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n");
  EXPECT_TRUE(r.chunked);
  EXPECT_TRUE(r.expect_continue);
  EXPECT_FALSE(r.content_length.has_value());
  EXPECT_FALSE(ParseOk("GET / HTTP/1.1\r\nExpect: something\r\n\r\n").expect_continue);
}

TEST(ParserTest, AbsoluteFormIsStripped) {
  HttpRequest r = ParseOk("GET http://host:9000/b/k?x=1 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.target, "/b/k?x=1");
  EXPECT_EQ(r.path, "/b/k");
  EXPECT_EQ(r.query, "x=1");
  EXPECT_EQ(ParseOk("GET HTTPS://host HTTP/1.1\r\n\r\n").target, "/");
  EXPECT_EQ(ParseOk("GET http://host?list HTTP/1.1\r\n\r\n").target, "/?list");
}

TEST(ParserTest, RejectsMalformedRequestLines) {
  EXPECT_EQ(ParseError("GET /\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/2.0\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1 \r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / http/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET  / HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("G(T / HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError(" GET / HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET bucket HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET * HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("CONNECT host:443 HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET http:///x HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError(std::string("GET /a\0b HTTP/1.1\r\n\r\n", 22)), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET /a\rb HTTP/1.1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET /\x7f HTTP/1.1\r\n\r\n"), Code::kBadRequest);
}

TEST(ParserTest, RejectsMalformedFields) {
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\n\tA: 1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA : 1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA\"b: 1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\n: 1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nnocolon\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA: x\ry\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), Code::kBadRequest);
  // HTAB and obs-text are legal inside values.
  EXPECT_EQ(ParseOk("GET / HTTP/1.1\r\nA: x\ty\xc3\xa9\r\n\r\n").headers[0].value, "x\ty\xc3\xa9");
}

TEST(ParserTest, RejectsAmbiguousFraming) {
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: +1\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: \r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), Code::kBadRequest);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Code::kNotImplemented);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n"),
            Code::kNotImplemented);
  EXPECT_EQ(ParseError("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"),
            Code::kNotImplemented);
}

TEST(ParserTest, HeadSizeLimit) {
  std::string head = "GET / HTTP/1.1\r\nA: " + std::string(200, 'x') + "\r\n\r\n";
  EXPECT_EQ(ParseError(head, 100), Code::kEntityTooLarge);
  // Incomplete and already past the limit.
  EXPECT_EQ(ParseError(head.substr(0, 150), 100), Code::kEntityTooLarge);
  // Exactly at the limit is fine.
  HttpRequest req;
  size_t used = 0;
  EXPECT_EQ(*ParseRequestHead(head, head.size(), &req, &used), ParseState::kDone);
  EXPECT_EQ(ParseError(std::string(200, '\n'), 100), Code::kEntityTooLarge);
}

TEST(ChunkSizeLineTest, ValidLines) {
  EXPECT_EQ(ParseChunkSizeLine("0"), 0u);
  EXPECT_EQ(ParseChunkSizeLine("1a"), 26u);
  EXPECT_EQ(ParseChunkSizeLine("FF"), 255u);
  EXPECT_EQ(ParseChunkSizeLine("0000000000000000000010"), 16u);
  EXPECT_EQ(
      ParseChunkSizeLine(
          "400;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
      1024u);
  EXPECT_EQ(ParseChunkSizeLine("5 ; a = b ;c;d=\"q\\\"t\""), 5u);
  EXPECT_EQ(ParseChunkSizeLine("4000000000000000"), uint64_t{1} << 62);
}

TEST(ChunkSizeLineTest, InvalidLines) {
  EXPECT_FALSE(ParseChunkSizeLine(""));
  EXPECT_FALSE(ParseChunkSizeLine(";a"));
  EXPECT_FALSE(ParseChunkSizeLine("g"));
  EXPECT_FALSE(ParseChunkSizeLine("-1"));
  EXPECT_FALSE(ParseChunkSizeLine("0x10"));
  EXPECT_FALSE(ParseChunkSizeLine("10 20"));
  EXPECT_FALSE(ParseChunkSizeLine("10;"));
  EXPECT_FALSE(ParseChunkSizeLine("10;a="));
  EXPECT_FALSE(ParseChunkSizeLine("10;a=\"open"));
  EXPECT_FALSE(ParseChunkSizeLine("10;a\x01"));
  EXPECT_FALSE(ParseChunkSizeLine("10\r"));
  EXPECT_FALSE(ParseChunkSizeLine("4000000000000001"));
  EXPECT_FALSE(ParseChunkSizeLine("ffffffffffffffffffff"));
  EXPECT_FALSE(ParseChunkSizeLine("10000000000000000"));
}

}  // namespace
}  // namespace vlake::http
