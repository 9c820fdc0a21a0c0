#include "services/common/shutdown.h"

#include <signal.h>
#include <unistd.h>

#include <thread>

#include "services/common/log.h"

namespace audit {

std::unique_ptr<ShutdownSignals> ShutdownSignals::Install() {
  std::unique_ptr<ShutdownSignals> signals(new ShutdownSignals());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed socket is an error to handle, not a reason to die
  ShutdownSignals* self = signals.get();
  std::thread([self, set] {
    int received = 0;
    sigwait(&set, &received);
    LogInfo("shutdown requested").With("signal", received == SIGINT ? "SIGINT" : "SIGTERM");
    self->Request();
    sigwait(&set, &received);
    LogWarning("second signal: exiting immediately");
    _exit(130);
  }).detach();
  return signals;
}

void ShutdownSignals::Request() {
  absl::MutexLock lock(&mu_);  // the signal thread and the program may both request
  if (!requested_.HasBeenNotified()) requested_.Notify();
}

}  // namespace audit
