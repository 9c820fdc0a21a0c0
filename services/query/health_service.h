// The standard gRPC health service (grpc.health.v1.Health), generated from the vendored
// health.proto so that reflection clients can describe and call it.
//
// Serving when the database is reachable (HeadWatcher::healthy), for the overall server ("")
// and for "audit.v1.AuditService"; NOT_FOUND for any other service name. Watch streams the
// status and every change of it (checked once a second) until cancelled.
#ifndef SERVICES_QUERY_HEALTH_SERVICE_H_
#define SERVICES_QUERY_HEALTH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "services/query/head_watcher.h"

namespace audit::query {

class HealthServiceImpl final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit HealthServiceImpl(const HeadWatcher* watcher) : watcher_(watcher) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* request) override;

  grpc::health::v1::HealthCheckResponse::ServingStatus Status() const;
  static bool Known(const std::string& service);

 private:
  const HeadWatcher* watcher_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_HEALTH_SERVICE_H_
