// The one place absl::Status becomes grpc::Status: the code is kept, the message capped.
#ifndef SERVICES_COMMON_GRPC_STATUS_H_
#define SERVICES_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace audit {

inline constexpr size_t kMaxStatusMessageBytes = 1024;

// Same code, message truncated to kMaxStatusMessageBytes (on a UTF-8 boundary).
grpc::Status ToGrpcStatus(const absl::Status& status);

// The reverse, for clients.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace audit

#endif  // SERVICES_COMMON_GRPC_STATUS_H_
