#include "services/common/config.h"

#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "services/common/log.h"

ABSL_FLAG(std::string, log_level, "info", "Minimum log level: debug, info, warning or error.");

namespace audit {
namespace {

// Routes libprotobuf's own log lines (e.g. "String field contains invalid UTF-8") into the
// structured log at debug level: the caller reports the failure with context.
void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                        const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    LogError("libprotobuf fatal").With("file", filename).With("line", line).With("detail", message);
    return;
  }
  LogDebug("libprotobuf").With("detail", message);
}

}  // namespace

absl::Status ApplyEnvironmentToFlags(absl::Span<const EnvFlag> env_flags) {
  for (const EnvFlag& ef : env_flags) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(ef.flag);
    if (flag == nullptr) return absl::NotFoundError(absl::StrCat("no flag --", ef.flag));
    const std::string var(ef.env);
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(var, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<char*> InitProgram(int argc, char** argv, absl::string_view component,
                               absl::string_view usage, absl::Span<const EnvFlag> env_flags) {
  SetLogComponent(component);
  google::protobuf::SetLogHandler(&ProtobufLogHandler);
  absl::SetProgramUsageMessage(usage);
  std::vector<EnvFlag> all(env_flags.begin(), env_flags.end());
  all.push_back({"log_level", "AUDIT_LOG_LEVEL"});
  if (absl::Status s = ApplyEnvironmentToFlags(all); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], std::string(s.message()).c_str());
    std::exit(2);
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "%s: --log_level must be debug, info, warning or error\n", argv[0]);
    std::exit(2);
  }
  SetMinLogLevel(level);
  return args;
}

}  // namespace audit
