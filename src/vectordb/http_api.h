// The vector database's JSON-over-HTTP API (docs/vectordb-api.md): a thin translation from
// requests to VectorEngine calls and back. Errors are {"error":{"code","message"}} with the
// HTTP status of the one status table (src/s3/errors.cc).
//
// Thread-safety: Handle may run on many server threads at once (the engine is thread-safe).
#pragma once

#include "http/body.h"
#include "http/request.h"
#include "vectordb/api_auth.h"
#include "vectordb/engine.h"

namespace vlake::vectordb {

inline constexpr std::string_view kSegmentContentType = "application/x-vlake-segment";

// Every path but GET /v1/health requires authentication (api_auth.h): 401 without valid
// credentials, 403 on another user's collection or job. Collections are listed per owner.
class VectorHttpApi {
 public:
  VectorHttpApi(VectorEngine* engine, const ApiAuthenticator* auth)
      : engine_(engine), auth_(auth) {}
  http::HttpResponse Handle(http::HttpRequest& request, http::BodyReader& body);

 private:
  VectorEngine* engine_;
  const ApiAuthenticator* auth_;
};

}  // namespace vlake::vectordb
