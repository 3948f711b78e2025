// Server-side copies (CopyObject, UploadPartCopy): the source is read with pread from its
// open blob files, so a concurrent overwrite of the source never tears the copy.
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/encoding.h"
#include "s3/names.h"
#include "s3/service_internal.h"

namespace vlake::s3 {

Result<CopySource> ParseCopySource(const RequestContext& ctx) {
  std::string_view raw = ctx.HeaderOr("x-amz-copy-source", "");
  size_t q = raw.find('?');
  if (q != std::string_view::npos) {
    std::string_view params = raw.substr(q + 1);
    if (params != "versionId=null") {
      return Error(Code::kInvalidArgument, "Only the null version can be copied");
    }
    raw = raw.substr(0, q);
  }
  auto decoded = UriDecode(raw, PlusDecoding::kPlusLiteral);
  if (!decoded) return Error(Code::kInvalidArgument, "Invalid copy source encoding");
  std::string_view s = *decoded;
  if (s.starts_with("/")) s.remove_prefix(1);
  size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size()) {
    return Error(Code::kInvalidArgument,
                 "Copy Source must mention the source bucket and key: "
                 "sourcebucket/sourcekey");
  }
  CopySource out{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
  VLAKE_RETURN_IF_ERROR(ValidateObjectKey(out.key));
  return out;
}

Result<store::ObjectHandle> OpenCopySource(RequestContext& ctx, const CopySource& source) {
  VLAKE_ASSIGN_OR_RETURN(store::BucketInfo info, ctx.state->store->GetBucket(source.bucket));
  if (!ctx.user || info.owner_id != ctx.user->user_id) return Error(Code::kAccessDenied, "");
  return ctx.state->store->OpenObject(source.bucket, source.key);
}

Result<IngestResult> CopyObjectRange(const store::ObjectHandle& src, uint64_t first,
                                     uint64_t length, std::optional<ChecksumAlgorithm> algorithm,
                                     store::BlobWriter* sink) {
  constexpr size_t kBufferBytes = 1 << 20;
  std::unique_ptr<char[]> buffer(new char[kBufferBytes]);
  Md5 md5;
  std::optional<Checksummer> checksum;
  if (algorithm) checksum.emplace(*algorithm);
  uint64_t skip = first, left = length;
  for (const auto& ext : src.extents) {
    if (left == 0) break;
    if (skip >= ext.size) {
      skip -= ext.size;
      continue;
    }
    uint64_t off = skip, end = std::min(ext.size, skip + left);
    skip = 0;
    while (off < end) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kBufferBytes, end - off));
      ssize_t n = ::pread(ext.fd->get(), buffer.get(), want, static_cast<off_t>(off));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read copy source", errno);
      }
      if (n == 0) return Error(Code::kCorruption, "copy source blob shorter than recorded");
      md5.Update(buffer.get(), static_cast<size_t>(n));
      if (checksum) checksum->Update(buffer.get(), static_cast<size_t>(n));
      VLAKE_RETURN_IF_ERROR(sink->Append(buffer.get(), static_cast<size_t>(n)));
      off += static_cast<uint64_t>(n);
      left -= static_cast<uint64_t>(n);
    }
  }
  if (left != 0) return Error(Code::kInternal, "copy range beyond the source's extents");
  IngestResult out;
  out.size = length;
  out.md5 = md5.Final();
  if (checksum) {
    out.checksum = store::ChecksumValue{*algorithm, store::ChecksumType::kFullObject,
                                        Base64Encode(checksum->Final())};
  }
  return out;
}

}  // namespace vlake::s3
