// Private to grpc_service.cc and grpc_data.cc: the authentication preamble of every RPC.
#pragma once

#include "milvus/status_map.h"

// Authenticates into `caller` (or answers UNAUTHENTICATED) and checks the database; the reply's
// status is always present (the SDKs read it even on success, where it is all zero).
#define VLAKE_MILVUS_AUTH(resp_status)                                     \
  pc::Status* vlake_status_ = (resp_status);                               \
  grpc::Status vlake_reply_;                                               \
  Status vlake_db_;                                                        \
  Result<vectordb::Caller> caller = Authenticate(ctx, &vlake_reply_, &vlake_db_); \
  if (!caller.ok()) return vlake_reply_;                                   \
  if (!vlake_db_.ok()) {                                                   \
    FillStatus(vlake_db_, Missing::kOther, vlake_status_);                 \
    vlake_status_->set_code(merr::kDatabaseNotFound);                      \
    return grpc::Status::OK;                                               \
  }
