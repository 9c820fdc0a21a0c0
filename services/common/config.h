// Configuration by command-line flags and environment variables.
//
// Every flag a binary lists can also be set through an environment variable named in the list
// (docs/ARCHITECTURE.md, "Configuration", has the table). A flag on the command line wins over
// the environment, which wins over the default. Example:
//
//   InitProgram(argc, argv, "ingestor", "usage...",
//               {{"kafka_brokers", "AUDIT_KAFKA_BROKERS"},
//                {"pg_url", "AUDIT_INGESTOR_PG_URL"}});
#ifndef SERVICES_COMMON_CONFIG_H_
#define SERVICES_COMMON_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audit {

struct EnvFlag {
  absl::string_view flag;  // flag name without dashes
  absl::string_view env;   // environment variable
};

// Sets each listed flag from its environment variable when that is set. Call before
// absl::ParseCommandLine so that the command line still wins. Returns InvalidArgument naming
// the variable if a value does not parse, NotFound if a listed flag does not exist.
absl::Status ApplyEnvironmentToFlags(absl::Span<const EnvFlag> env_flags);

// Parses the command line after applying the environment; on a bad value prints the error and
// exits with status 2. Sets the log component and level (--log_level, AUDIT_LOG_LEVEL).
// Returns the positional arguments (argv[0] first).
std::vector<char*> InitProgram(int argc, char** argv, absl::string_view component,
                               absl::string_view usage, absl::Span<const EnvFlag> env_flags);

}  // namespace audit

#endif  // SERVICES_COMMON_CONFIG_H_
