// vlake Status -> Milvus common.Status, the way the SDKs read it: the legacy `error_code` enum
// and the numeric `code` of Milvus 2.3+ (its error table, pkg/util/merr: 100 collection not
// found, 700 index not found, 1100 invalid parameter, ...), and a `reason`. Success is the
// all-zero status. The one place the vector database's errors become Milvus errors.
#pragma once

#include "common.pb.h"
#include "vlake/status.h"

namespace vlake::milvus {

// What a kNotFound is about, which picks Milvus's code for it (a message that starts with
// "partition not found" or "index not found" is about that, whatever `missing` says).
enum class Missing { kCollection, kIndex, kOther };

// Milvus's numeric codes vlake answers (Status.code).
namespace merr {
inline constexpr int kServiceNotReady = 1;
inline constexpr int kServiceInternal = 5;
inline constexpr int kServiceUnimplemented = 10;
inline constexpr int kCollectionNotFound = 100;
inline constexpr int kPartitionNotFound = 200;
inline constexpr int kIndexNotFound = 700;
inline constexpr int kDatabaseNotFound = 800;
inline constexpr int kParameterInvalid = 1100;
inline constexpr int kPrivilegeNotAuthenticated = 1400;
inline constexpr int kPrivilegeNotPermitted = 1401;
}  // namespace merr

void FillStatus(const Status& status, Missing missing, ::milvus::proto::common::Status* out);
::milvus::proto::common::Status ToMilvusStatus(const Status& status,
                                               Missing missing = Missing::kOther);

}  // namespace vlake::milvus
