#include "rdma/ucx_common.h"

namespace vlake::rdma {

Status UcsStatus(std::string_view context, ucs_status_t status, Code code) {
  if (status == UCS_OK) return Status::Ok();
  return Error(code, std::string(context) + ": " + ucs_status_string(status));
}

Result<std::shared_ptr<UcxContext>> UcxContext::Create(const std::string& transports) {
  ucp_config_t* config = nullptr;
  VLAKE_RETURN_IF_ERROR(
      UcsStatus("ucp_config_read", ucp_config_read(nullptr, nullptr, &config), Code::kUnavailable));
  // The server reads worker addresses itself before UCX does (ucx_address.h), and it knows
  // the non-unified layout only; unified mode also assumes identical peers, which clients and
  // storage nodes are not. Pinned here so that UCX_UNIFIED_MODE=y in the environment cannot
  // turn every token into a refusal.
  if (ucs_status_t st = ucp_config_modify(config, "UNIFIED_MODE", "n"); st != UCS_OK) {
    ucp_config_release(config);
    return UcsStatus("UCX UNIFIED_MODE", st, Code::kUnavailable);
  }
  if (!transports.empty()) {
    ucs_status_t st = ucp_config_modify(config, "TLS", transports.c_str());
    if (st != UCS_OK) {
      ucp_config_release(config);
      return UcsStatus("UCX transports '" + transports + "'", st, Code::kInvalidArgument);
    }
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP;
  params.mt_workers_shared = 1;
  std::shared_ptr<UcxContext> ctx(new UcxContext());
  ucs_status_t st = ucp_init(&params, config, &ctx->context_);
  ucp_config_release(config);
  VLAKE_RETURN_IF_ERROR(UcsStatus("ucp_init", st, Code::kUnavailable));
  return ctx;
}

UcxContext::~UcxContext() {
  if (context_) ucp_cleanup(context_);
}

Result<ucp_worker_h> CreateWorker(ucp_context_h context) {
  ucp_worker_params_t params{};
  params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  params.thread_mode = UCS_THREAD_MODE_SINGLE;
  ucp_worker_h worker = nullptr;
  VLAKE_RETURN_IF_ERROR(UcsStatus("ucp_worker_create", ucp_worker_create(context, &params, &worker),
                                  Code::kUnavailable));
  return worker;
}

}  // namespace vlake::rdma
