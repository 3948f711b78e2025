#include "milvus/status_map.h"

namespace vlake::milvus {

namespace pc = ::milvus::proto::common;

void FillStatus(const Status& status, Missing missing, pc::Status* out) {
  out->Clear();
  if (status.ok()) return;
  pc::ErrorCode legacy = pc::UnexpectedError;
  int code = merr::kServiceInternal;
  switch (status.code()) {
    case Code::kNotFound:
      if (status.message().rfind("partition not found", 0) == 0) {
        legacy = pc::MetaFailed;
        code = merr::kPartitionNotFound;
      } else if (status.message().rfind("index not found", 0) == 0) {
        legacy = pc::IndexNotExist;
        code = merr::kIndexNotFound;
      } else if (missing == Missing::kCollection) {
        legacy = pc::CollectionNotExists;
        code = merr::kCollectionNotFound;
      } else if (missing == Missing::kIndex) {
        legacy = pc::IndexNotExist;
        code = merr::kIndexNotFound;
      } else {
        legacy = pc::IllegalArgument;
        code = merr::kParameterInvalid;
      }
      break;
    case Code::kInvalidArgument:
    case Code::kInvalidRequest:
    case Code::kAlreadyExists:
      legacy = pc::IllegalArgument;
      code = merr::kParameterInvalid;
      break;
    case Code::kUnauthenticated:
      legacy = pc::PermissionDenied;
      code = merr::kPrivilegeNotAuthenticated;
      break;
    case Code::kAccessDenied:
      legacy = pc::PermissionDenied;
      code = merr::kPrivilegeNotPermitted;
      break;
    case Code::kUnavailable:
      legacy = pc::NotReadyServe;
      code = merr::kServiceNotReady;
      out->set_retriable(true);
      break;
    case Code::kNotImplemented:
      code = merr::kServiceUnimplemented;
      break;
    default:
      break;
  }
  out->set_error_code(legacy);
  out->set_code(code);
  out->set_reason(status.message());
}

pc::Status ToMilvusStatus(const Status& status, Missing missing) {
  pc::Status out;
  FillStatus(status, missing, &out);
  return out;
}

}  // namespace vlake::milvus
