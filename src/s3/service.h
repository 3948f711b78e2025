// S3Service: the S3 REST surface over a Store. Turns one HTTP request into one HTTP response:
// request id, ops endpoints (/health, /metrics), bucket/key addressing (path-style and
// virtual-host-style), SigV4 authentication, ownership checks, dispatch to the operation, and
// Status -> S3 XML error replies (src/s3/errors.cc is the one mapping table).
//
// Thread-safety: Handle() is called concurrently from connection threads; the service holds
// only immutable configuration, the thread-safe Store and atomic metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "http/body.h"
#include "http/request.h"
#include "rdma/engine.h"
#include "s3/users.h"
#include "store/store.h"

namespace vlake::s3 {

struct S3Options {
  // Region reported by GetBucketLocation and accepted in signatures (any region is accepted
  // for signing, as clients default to different ones).
  std::string region = "us-east-1";
  // Allow unsigned GET/HEAD of objects and listings. Writes always need a signature.
  bool allow_anonymous_read = false;
  // Buckets of this owner are never read anonymously, whatever allow_anonymous_read says
  // (the embedded vector database's internal identity). Empty: none.
  std::string private_owner_id;
  // Host suffixes for virtual-host-style addressing: "<bucket>.<domain>[:port]".
  std::vector<std::string> domains = {"localhost"};
  // Largest |server clock - request clock| accepted for header-signed requests.
  int64_t max_skew_s = 900;
  // Largest single PUT / part accepted (S3: 5 GiB).
  uint64_t max_object_bytes = 5ull << 30;
  // The direct data path (x-amz-rdma-token); null declines every token (x-amz-rdma-reply:
  // 501). Not owned; must outlive the service.
  rdma::Engine* direct_engine = nullptr;
  // A direct transfer running longer than this fails with RDMATransferFailed.
  int64_t direct_timeout_ms = 10 * 60 * 1000;
};

class S3Service {
 public:
  S3Service(store::Store* store, UserDirectory users, S3Options options, MetricsRegistry* metrics);
  ~S3Service();
  S3Service(const S3Service&) = delete;
  S3Service& operator=(const S3Service&) = delete;

  http::HttpResponse Handle(http::HttpRequest& request, http::BodyReader& body);

  struct State;  // internal; defined in service_internal.h

 private:
  std::unique_ptr<State> state_;
};

}  // namespace vlake::s3
