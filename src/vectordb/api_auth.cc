#include "vectordb/api_auth.h"

#include "common/encoding.h"
#include "s3/sigv4.h"

namespace vlake::vectordb {
namespace {

Status Unauthenticated(const std::string& why) { return Status(Code::kUnauthenticated, why); }

}  // namespace

Result<Caller> ApiAuthenticator::Authenticate(const http::HttpRequest& request) const {
  const std::string* authorization = request.FindHeader("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization != nullptr && authorization->size() > kBearer.size() &&
      std::string_view(*authorization).substr(0, kBearer.size()) == kBearer) {
    std::string_view token = std::string_view(*authorization).substr(kBearer.size());
    size_t colon = token.find(':');
    if (colon == std::string_view::npos) {
      return Unauthenticated("Bearer credentials must be ACCESS_KEY:SECRET_KEY");
    }
    return AuthenticateKey(token.substr(0, colon), token.substr(colon + 1));
  }
  s3::AuthOptions opts;
  opts.now_unix_s = UnixSeconds();
  Result<s3::AuthResult> auth = s3::Authenticate(
      request,
      [this](std::string_view key) -> std::optional<std::string> {
        const s3::User* u = users_.FindByAccessKey(key);
        if (u == nullptr) return std::nullopt;
        return u->secret_key;
      },
      opts);
  if (!auth.ok()) {
    return Unauthenticated(std::string(CodeName(auth.status().code())) + ": " +
                           auth.status().message());
  }
  if (auth->anonymous) {
    return Unauthenticated(
        "credentials required: Authorization: Bearer ACCESS_KEY:SECRET_KEY or an AWS SigV4 "
        "signature");
  }
  if (auth->payload != s3::PayloadMode::kUnsigned && auth->payload != s3::PayloadMode::kHashed) {
    return Status(Code::kInvalidRequest, "streaming (aws-chunked) bodies are not accepted here");
  }
  const s3::User* user = users_.FindByAccessKey(auth->access_key);
  if (user == nullptr) return Unauthenticated("the access key is unknown");
  return Caller{user->user_id, user->access_key, auth->payload_sha256_hex};
}

Result<Caller> ApiAuthenticator::AuthenticateKey(std::string_view access_key,
                                                 std::string_view secret) const {
  const s3::User* user = users_.FindByAccessKey(access_key);
  // The same answer for an unknown key and a wrong secret: nothing to learn from it.
  if (user == nullptr || !s3::ConstantTimeEquals(user->secret_key, secret)) {
    return Unauthenticated("the access key or the secret key is wrong");
  }
  return Caller{user->user_id, user->access_key, ""};
}

}  // namespace vlake::vectordb
