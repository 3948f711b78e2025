// The direct data path on the S3 surface (x-amz-rdma-token; docs/direct-data-path.md): the
// request is an ordinary signed S3 request, the payload moves through an rdma::Engine.
#include <poll.h>

#include <algorithm>

#include "common/encoding.h"
#include "common/log.h"
#include "s3/service_internal.h"

namespace vlake::s3 {
namespace {

constexpr std::string_view kReplyHeader = "x-amz-rdma-reply";
constexpr std::string_view kBytesHeader = "x-amz-rdma-bytes-transferred";

// Stops a transfer whose client hung up or that ran past the deadline.
rdma::CancelCheck MakeCancelCheck(const RequestContext& ctx) {
  int fd = ctx.req->connection_fd;
  int64_t deadline_ms = UnixMillis() + ctx.state->options.direct_timeout_ms;
  return [fd, deadline_ms]() -> Status {
    if (fd >= 0) {
      pollfd p{fd, POLLRDHUP, 0};
      if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
        return Error(Code::kCancelled, "the client closed the connection during the transfer");
      }
    }
    if (UnixMillis() > deadline_ms) {
      return Error(Code::kRdmaTransferFailed, "the direct transfer exceeded its time limit");
    }
    return Status::Ok();
  };
}

// The region size a served token grants (engines serve only variants with a grant).
uint64_t RegionBytes(const DirectRequest& direct) { return rdma::GrantOf(direct.token)->length; }

// Admits the token once (replay guard) and connects to the region.
Result<std::unique_ptr<rdma::Transfer>> OpenDirect(RequestContext& ctx,
                                                   const DirectRequest& direct) {
  rdma::TokenGrant grant = *rdma::GrantOf(direct.token);
  VLAKE_RETURN_IF_ERROR(
      ctx.state->replay_guard.Admit(grant.nonce, grant.expires_unix_ms, UnixMillis()));
  auto opened =
      ctx.state->options.direct_engine->Open(direct.token, ctx.req->peer, MakeCancelCheck(ctx));
  if (!opened.ok()) {
    Log(LogLevel::kWarn, "direct transfer refused",
        {{"request_id", ctx.request_id}, {"error", opened.error().ToString()}});
  }
  return opened;
}

// A transfer that stopped after the token was accepted; nothing of it is in flight any more.
void LogStopped(const RequestContext& ctx, const Status& why) {
  Log(LogLevel::kWarn, "direct transfer stopped",
      {{"request_id", ctx.request_id}, {"op", ctx.op}, {"error", why.ToString()}});
}

Status TooSmall(uint64_t region, uint64_t needed) {
  return Error(Code::kInvalidRdmaToken, "The registered region (" + std::to_string(region) +
                                            " bytes) is smaller than the " +
                                            std::to_string(needed) + " bytes to transfer.");
}

// Serves a PUT payload from the client's region, in order, through the engine.
class DirectBodyReader : public http::BodyReader {
 public:
  DirectBodyReader(rdma::Transfer* transfer, uint64_t size) : transfer_(transfer), size_(size) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, size_ - pos_));
    if (take == 0) return size_t{0};
    VLAKE_RETURN_IF_ERROR(transfer_->ReadInto(pos_, buf, take));
    pos_ += take;
    return take;
  }
  std::optional<uint64_t> Length() const override { return size_; }

 private:
  rdma::Transfer* transfer_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

}  // namespace

Result<std::optional<DirectRequest>> ParseDirect(const RequestContext& ctx) {
  const std::string* value = ctx.Header(rdma::kTokenHeader);
  if (!value) return std::optional<DirectRequest>();
  // The token names memory the server will write: only a request whose signature covers it
  // may use it (a presigned URL signs it through X-Amz-SignedHeaders).
  if (std::find(ctx.auth.signed_headers.begin(), ctx.auth.signed_headers.end(),
                rdma::kTokenHeader) == ctx.auth.signed_headers.end()) {
    return Error(Code::kAccessDenied,
                 "x-amz-rdma-token must be covered by the request's signature (SigV4 "
                 "SignedHeaders)");
  }
  VLAKE_ASSIGN_OR_RETURN(rdma::Token token, rdma::ParseToken(TrimWhitespace(*value)));
  DirectRequest direct;
  rdma::Engine* engine = ctx.state->options.direct_engine;
  direct.served = engine != nullptr && rdma::GrantOf(token) && engine->Serves(token);
  direct.token = std::move(token);
  return std::optional<DirectRequest>(std::move(direct));
}

Status DirectGet(RequestContext& ctx, const DirectRequest& direct, uint64_t length,
                 http::HttpResponse* resp) {
  if (!direct.served) {
    resp->AddHeader(std::string(kReplyHeader), "501");
    return Status::Ok();
  }
  uint64_t region_bytes = RegionBytes(direct);
  if (length > region_bytes) return TooSmall(region_bytes, length);
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<rdma::Transfer> transfer, OpenDirect(ctx, direct));
  uint64_t region_offset = 0;
  Status moved;
  for (const http::FileSlice& slice : resp->file_slices) {
    moved = transfer->WriteFromFile(slice.fd->get(), slice.offset, region_offset, slice.length);
    if (!moved.ok()) break;
    region_offset += slice.length;
  }
  if (moved.ok()) moved = transfer->Flush();
  if (!moved.ok()) {
    LogStopped(ctx, moved);
    return moved;
  }
  ctx.state->direct_bytes->Add(length);
  resp->file_slices.clear();
  resp->body.clear();
  resp->omit_body = true;
  resp->AddHeader("Content-Length", "0");
  resp->AddHeader(std::string(kReplyHeader), std::to_string(resp->status));
  resp->AddHeader(std::string(kBytesHeader), std::to_string(length));
  return Status::Ok();
}

Result<IngestResult> IngestPayload(RequestContext& ctx, const std::optional<DirectRequest>& maybe,
                                   const PayloadChecks& checks, store::BlobWriter* sink) {
  if (!maybe) return IngestBody(ctx, checks, sink, nullptr, ctx.state->options.max_object_bytes);
  const DirectRequest& direct = *maybe;
  if (!direct.served) {
    return Error(Code::kRdmaNotSupported, "This server does not serve this x-amz-rdma-token.");
  }
  if (ctx.req->chunked || ctx.req->content_length.value_or(0) != 0) {
    return Error(Code::kInvalidRequest,
                 "A request with x-amz-rdma-token carries its payload in the token's region; "
                 "its body must be empty (Content-Length: 0).");
  }
  bool empty_hash = ctx.auth.payload == PayloadMode::kHashed &&
                    AsciiLower(ctx.auth.payload_sha256_hex) == kEmptySha256Hex;
  if (ctx.auth.payload != PayloadMode::kUnsigned && !empty_hash) {
    return Error(Code::kInvalidRequest,
                 "A direct upload needs x-amz-content-sha256: UNSIGNED-PAYLOAD (or the hash of "
                 "the empty body).");
  }
  if (checks.checksum_in_trailer) {
    return Error(Code::kInvalidRequest, "A direct upload cannot carry trailers.");
  }
  uint64_t size = RegionBytes(direct);
  if (size > ctx.state->options.max_object_bytes) {
    return Error(Code::kEntityTooLarge, "Your proposed upload exceeds the maximum allowed size");
  }
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<rdma::Transfer> transfer, OpenDirect(ctx, direct));
  DirectBodyReader reader(transfer.get(), size);
  // Ingest from the region with the same verification and hashing as a body; the region's
  // bytes are unsigned (like UNSIGNED-PAYLOAD), their integrity is checked by Content-MD5 /
  // x-amz-checksum-* when the client sends them.
  http::BodyReader* saved_body = ctx.body;
  PayloadMode saved_mode = ctx.auth.payload;
  ctx.body = &reader;
  ctx.auth.payload = PayloadMode::kUnsigned;
  auto result = IngestBody(ctx, checks, sink, nullptr, ctx.state->options.max_object_bytes);
  ctx.body = saved_body;
  ctx.auth.payload = saved_mode;
  if (result.ok()) {
    ctx.state->direct_bytes->Add(size);
  } else {
    LogStopped(ctx, result.error());
  }
  return result;
}

void AddDirectPutHeaders(uint64_t bytes, http::HttpResponse* resp) {
  resp->AddHeader(std::string(kReplyHeader), "200");
  resp->AddHeader(std::string(kBytesHeader), std::to_string(bytes));
}

}  // namespace vlake::s3
