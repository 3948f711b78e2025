// Fuzzes the aws-chunked decoder (src/s3/aws_chunked.h).
//
// Byte 0 picks the mode and whether x-amz-decoded-content-length is set, byte 1 the read size;
// the rest is decoded as a body (any status is fine, crashes and sanitizer reports are not).
// Round-trip property: the same bytes encoded with EncodeAwsChunked() must decode to themselves
// in every mode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "s3/aws_chunked.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlake;
  if (size < 2) return 0;
  const uint8_t mode_byte = data[0];
  const size_t read_size = static_cast<size_t>(data[1]) + 1;
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);

  s3::AwsChunkedConfig config;
  config.mode = static_cast<s3::AwsChunkedMode>(mode_byte % 3);
  config.scope = {"20130524", "us-east-1", "s3"};
  config.signing_key = s3::DeriveSigningKey("fuzz-secret", config.scope);
  config.amz_date = "20130524T000000Z";
  config.seed_signature = std::string(64, 'a');
  config.input_buffer_bytes = (mode_byte & 0x10) ? 7 : 4096;
  if (mode_byte & 0x8) config.decoded_length = (mode_byte >> 5) * 3;

  std::vector<http::Header> trailers;
  auto decoded = s3::DecodeAwsChunked(body, config, read_size, &trailers, 1 << 20);
  (void)decoded;

  config.decoded_length = body.size();
  std::vector<http::Header> trailer = {{"x-amz-checksum-crc32", "AAAAAA=="}};
  std::string encoded = s3::EncodeAwsChunked(body, read_size, config, trailer);
  auto round_trip = s3::DecodeAwsChunked(encoded, config, 1 + read_size / 2, &trailers);
  if (!round_trip.ok() || *round_trip != body) __builtin_trap();
  if (config.mode != s3::AwsChunkedMode::kSigned && trailers.size() != 1) __builtin_trap();
  return 0;
}
