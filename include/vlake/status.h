// Status and Result<T>: the error type of every fallible call in vlake.
//
// A Status is a code from one closed set plus a human-readable message. The set is shaped by
// what the S3 surface must be able to say (NoSuchKey, BadDigest, ...) plus a few generic
// failures (IoError, Corruption, Internal). The mapping from Code to the S3 error code string
// and HTTP status lives in exactly one table: src/s3/errors.cc.
//
// Result<T> holds either a T or a non-OK Status, spelled like std::expected (GCC 12 only has
// <expected> under C++23): has_value(), value(), error(), operator*, operator->.
//
// Thread-safety: values; no shared state. Both types are cheap to move.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vlake {

enum class Code : int {
  kOk = 0,
  // Generic failures.
  kInvalidArgument,  // a caller passed something malformed (S3: InvalidArgument / InvalidRequest)
  kNotFound,         // generic "no such thing" where no S3-specific code applies
  kAlreadyExists,
  kIoError,      // the OS refused (disk full, EIO, ...)
  kCorruption,   // stored bytes failed a checksum or parse
  kInternal,     // a bug or an unexpected state
  kUnavailable,  // shutting down / overloaded; retry later
  kTimeout,
  kCancelled,
  kNotImplemented,
  // S3-specific outcomes (see src/s3/errors.cc for the wire mapping).
  kNoSuchBucket,
  kNoSuchKey,
  kNoSuchUpload,
  kBucketAlreadyExists,
  kBucketAlreadyOwnedByYou,
  kBucketNotEmpty,
  kInvalidBucketName,
  kKeyTooLong,
  kEntityTooSmall,
  kEntityTooLarge,
  kInvalidPart,
  kInvalidPartOrder,
  kBadDigest,
  kInvalidDigest,
  kInvalidRange,
  kPreconditionFailed,
  kNotModified,
  kAccessDenied,
  kSignatureDoesNotMatch,
  kInvalidAccessKeyId,
  kRequestTimeTooSkewed,
  kMalformedXml,
  kInvalidRequest,
  kContentSha256Mismatch,
  kIncompleteBody,
  kMissingContentLength,
  kMethodNotAllowed,
  kInvalidTag,
  kAuthorizationHeaderMalformed,
  kMissingSecurityHeader,
  kExpiredToken,
  kRequestTimeout,
  kInvalidEncryptionAlgorithm,
  kMalformedTrailer,
  kInvalidChecksum,
  kConditionalRequestConflict,
  kBadRequest,  // HTTP-level framing error before any S3 semantics
  kInvalidPartNumber,
  // Direct data path (x-amz-rdma-token).
  kInvalidRdmaToken,    // malformed token, or region smaller than the bytes to move
  kRdmaNotSupported,    // token variant this server does not serve (PUT)
  kRdmaTransferFailed,  // the transfer failed after the server accepted the token
  // Unset bucket configurations that vlake does not support (GET answers "none set").
  kNoSuchBucketPolicy,
  kNoSuchCorsConfiguration,
  kNoSuchLifecycleConfiguration,
  kNoSuchWebsiteConfiguration,
  kNoSuchEncryptionConfiguration,
  kNoSuchPublicAccessBlockConfiguration,
  kNoSuchOwnershipControls,
  kNoSuchObjectLockConfiguration,
  kNoSuchReplicationConfiguration,
  kNoSuchTagSet,
  kEntityTooLargeHeader,  // request head above the limit (HTTP 431)
  // No credentials, or credentials that do not check out, on an API that answers 401 (the
  // vector database's; the S3 surface answers 403 with its own codes).
  kUnauthenticated,
};

// Short stable name of a code, e.g. "NoSuchKey"; used in logs and as the default S3 code.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NoSuchKey: the key does not exist" (or "OK").
  std::string ToString() const;

  // Explicitly drops a status the caller has decided not to act on.
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Error(Code code, std::string message) { return Status(code, std::move(message)); }

// Converts errno to a Status once, with context ("open /data/x").
Status ErrnoStatus(std::string_view context, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit like std::expected
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) std::abort();   // an OK status carries no value
  }

  bool has_value() const { return v_.index() == 0; }
  bool ok() const { return has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & { return Checked(); }
  const T& value() const& { return const_cast<Result*>(this)->Checked(); }
  T&& value() && { return std::move(Checked()); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return const_cast<Result*>(this)->Checked(); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->Checked(); }

  const Status& error() const {
    if (has_value()) std::abort();
    return std::get<Status>(v_);
  }
  // OK when a value is held, else the error.
  Status status() const { return has_value() ? Status() : std::get<Status>(v_); }

 private:
  T& Checked() {
    if (!has_value()) std::abort();
    return std::get<0>(v_);
  }
  std::variant<T, Status> v_;
};

namespace internal {
inline Status AsStatus(const Status& s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) {
  return r.status();
}
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
}  // namespace internal

}  // namespace vlake

#define VLAKE_CONCAT_INNER(a, b) a##b
#define VLAKE_CONCAT(a, b) VLAKE_CONCAT_INNER(a, b)

#define VLAKE_RETURN_IF_ERROR(expr)                                      \
  do {                                                                   \
    ::vlake::Status vlake_status_ = ::vlake::internal::AsStatus((expr)); \
    if (!vlake_status_.ok()) return vlake_status_;                       \
  } while (0)

#define VLAKE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.has_value()) return tmp.error();         \
  lhs = std::move(*tmp)

#define VLAKE_ASSIGN_OR_RETURN(lhs, expr) \
  VLAKE_ASSIGN_OR_RETURN_IMPL(VLAKE_CONCAT(vlake_result_, __LINE__), lhs, expr)

// Broken invariants abort with file:line; they are bugs, not errors.
#define VLAKE_CHECK(cond)                                                   \
  do {                                                                      \
    if (!(cond)) ::vlake::internal::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)
