#include "tests/torture/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace audit::torture {

absl::StatusOr<std::unique_ptr<Process>> Process::Spawn(Options options) {
  std::unique_ptr<Process> p(new Process(std::move(options)));
  // Everything the child needs is prepared before fork(): only async-signal-safe calls after.
  std::vector<std::string> argv_storage = {p->options_.path};
  argv_storage.insert(argv_storage.end(), p->options_.args.begin(), p->options_.args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    bool overridden = false;
    for (const auto& [k, v] : p->options_.env) {
      overridden |= absl::StartsWith(*e, k + "=");
    }
    if (!overridden) env_storage.emplace_back(*e);
  }
  for (const auto& [k, v] : p->options_.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int log_fd =
      open(p->options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", p->options_.log_path));
  }
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
  if (p->options_.pipe_stdio &&
      (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0)) {
    close(log_fd);
    return absl::InternalError("pipe");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (p->options_.pipe_stdio) {
      dup2(in_pipe[0], STDIN_FILENO);
      dup2(out_pipe[1], STDOUT_FILENO);
    } else {
      const int null_fd = open("/dev/null", O_RDONLY);
      dup2(null_fd, STDIN_FILENO);
      dup2(log_fd, STDOUT_FILENO);
    }
    dup2(log_fd, STDERR_FILENO);
    // Signals the harness blocks are unblocked for the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  p->pid_ = pid;
  if (p->options_.pipe_stdio) {
    close(in_pipe[0]);
    close(out_pipe[1]);
    p->stdin_fd_ = in_pipe[1];
    p->stdout_fd_ = out_pipe[0];
  }
  return p;
}

Process::~Process() {
  if (running()) {
    Signal(SIGKILL);
    (void)Wait(absl::Seconds(10));
  }
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

bool Process::running() {
  if (exit_.has_value() || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (running()) kill(pid_, sig);
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  if (!WaitUntil([this] { return !running(); }, timeout, absl::Milliseconds(10))) {
    return absl::DeadlineExceededError(absl::StrCat(options_.path, " still running"));
  }
  return *exit_;
}

int Process::Stop(absl::Duration grace) {
  Signal(SIGTERM);
  absl::StatusOr<int> e = Wait(grace);
  if (e.ok()) return *e;
  Signal(SIGKILL);
  e = Wait(absl::Seconds(10));
  return e.ok() ? *e : -SIGKILL;
}

absl::Status Process::WriteLine(const std::string& line) {
  const std::string data = line + "\n";
  if (stdin_fd_ < 0 ||
      write(stdin_fd_, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return absl::UnavailableError("cannot write to the child");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Process::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t nl = stdout_buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = stdout_buffer_.substr(0, nl);
      stdout_buffer_.erase(0, nl + 1);
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("no line from the child");
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int r = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return absl::UnavailableError("the child closed its stdout");
    stdout_buffer_.append(buf, static_cast<size_t>(n));
  }
}

int64_t Process::PeakRssKib() const {
  std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmHWM:")) {
      int64_t kib = 0;
      absl::string_view v = absl::StripAsciiWhitespace(rest);
      v = absl::StripSuffix(v, "kB");
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &kib)) return kib;
    }
  }
  return 0;
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
               absl::Duration step) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(step);  // polling observable state, not standing in for it
  }
}

}  // namespace audit::torture
