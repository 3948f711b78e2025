// Who may call the vector database's network APIs (the JSON API, and the Milvus-compatible
// one to come): the same users as the S3 surface (an access key is a user name, its secret the
// password). A request proves it is one of them with
//   Authorization: Bearer ACCESS_KEY:SECRET_KEY   (what Milvus clients send), or
//   an AWS Signature Version 4 (Authorization header or presigned query, service "s3"),
// and anything else is refused with kUnauthenticated (HTTP 401). Each collection has an owner
// (the user id that created it); only its owner may see or touch it.
//
// Thread-safety: immutable after construction; Authenticate may run on many threads.
#pragma once

#include <string>

#include "http/request.h"
#include "s3/users.h"
#include "vlake/status.h"

namespace vlake::vectordb {

struct Caller {
  std::string user_id;
  std::string access_key;
  // SigV4 with a hashed payload: the lowercase hex SHA-256 the body must have (the API checks
  // it after reading the body). Empty otherwise.
  std::string payload_sha256;
};

class ApiAuthenticator {
 public:
  // `default_owner`: the user id that owns collections made before owners were recorded.
  ApiAuthenticator(s3::UserDirectory users, std::string default_owner)
      : users_(std::move(users)), default_owner_(std::move(default_owner)) {}

  Result<Caller> Authenticate(const http::HttpRequest& request) const;
  // A user name (access key) and password (secret key) as Milvus clients send them (Bearer
  // token, gRPC `authorization` metadata); kUnauthenticated when they do not match a user.
  Result<Caller> AuthenticateKey(std::string_view access_key, std::string_view secret) const;
  // Whether `caller` owns a collection whose recorded owner is `owner` ("" = default owner).
  bool Owns(const Caller& caller, const std::string& owner) const {
    return caller.user_id == (owner.empty() ? default_owner_ : owner);
  }

 private:
  s3::UserDirectory users_;
  std::string default_owner_;
};

}  // namespace vlake::vectordb
