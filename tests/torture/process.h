// A child process of the torture harness: a real binary with its own environment and log
// file, that can be signalled (SIGKILL for crashes, SIGTERM for clean stops) and waited for.
//
// Spawn from the harness's main thread only: children get PR_SET_PDEATHSIG, which fires when
// the spawning *thread* exits, so that a crashed harness never leaves processes behind.
// Not thread-safe.
#ifndef TESTS_TORTURE_PROCESS_H_
#define TESTS_TORTURE_PROCESS_H_

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace audit::torture {

class Process {
 public:
  struct Options {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;  // added to the harness's own
    std::string log_path;                                  // stderr (and stdout unless piped)
    bool pipe_stdio = false;  // stdin and stdout become pipes (WriteLine / ReadLine)
  };

  static absl::StatusOr<std::unique_ptr<Process>> Spawn(Options options);
  // SIGKILLs the process if it still runs, and reaps it.
  ~Process();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return options_.log_path; }
  bool running();
  void Signal(int sig);
  // The exit: >= 0 an exit status, < 0 the negated signal; DEADLINE_EXCEEDED on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit.
  int Stop(absl::Duration grace);

  absl::Status WriteLine(const std::string& line);
  // One line of the child's stdout (without the newline); DEADLINE_EXCEEDED on timeout.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);

  // Peak resident set size so far (VmHWM), in KiB; 0 if unknown.
  int64_t PeakRssKib() const;

 private:
  explicit Process(Options options) : options_(std::move(options)) {}
  Options options_;
  pid_t pid_ = -1;
  std::optional<int> exit_;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
};

// Waits until `condition` holds, checking every `step`, for at most `timeout`. The harness's
// only way to wait: on observable state, never on a fixed sleep.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
               absl::Duration step = absl::Milliseconds(50));

}  // namespace audit::torture

#endif  // TESTS_TORTURE_PROCESS_H_
