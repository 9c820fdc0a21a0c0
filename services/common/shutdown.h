// Graceful shutdown on SIGINT/SIGTERM.
//
// Install() must be the first thing main() does, before any thread exists: it blocks the
// signals in the calling thread, so every thread started later (gRPC, librdkafka) inherits the
// mask and only the dedicated waiter thread receives them. The first signal notifies
// requested(); a second one exits at once with status 130 (an impatient operator).
#ifndef SERVICES_COMMON_SHUTDOWN_H_
#define SERVICES_COMMON_SHUTDOWN_H_

#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace audit {

class ShutdownSignals {
 public:
  static std::unique_ptr<ShutdownSignals> Install();

  const absl::Notification& requested() const { return requested_; }
  // For programs that stop for other reasons (e.g. a fatal error) to unblock waiters.
  void Request();

 private:
  ShutdownSignals() = default;
  absl::Mutex mu_;
  absl::Notification requested_;
};

}  // namespace audit

#endif  // SERVICES_COMMON_SHUTDOWN_H_
