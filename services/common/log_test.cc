#include "services/common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace audit {
namespace {

// Captures what is written to stderr while `body` runs.
template <typename Body>
std::string CaptureStderr(Body body) {
  char path[] = "/tmp/log_test_XXXXXX";
  const int fd = mkstemp(path);
  const int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  body();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  return out;
}

TEST(LogTest, WritesOneJsonObjectPerLine) {
  SetLogComponent("ingestor");
  const std::string out = CaptureStderr([] {
    LogInfo("batch committed").With("events", 500).With("topic", "orders.events").With("ok", true);
  });
  EXPECT_EQ(out.substr(0, 7), "{\"ts\":\"");
  EXPECT_NE(out.find("\"level\":\"info\",\"component\":\"ingestor\",\"msg\":\"batch committed\","
                     "\"events\":500,\"topic\":\"orders.events\",\"ok\":true}\n"),
            std::string::npos)
      << out;
}

TEST(LogTest, HostileValuesCannotBreakTheLine) {
  const std::string out = CaptureStderr(
      [] { LogWarning("x").With("value", "a\"b\nc").With("bytes", std::string("\xff\x00z", 3)); });
  EXPECT_NE(out.find(R"("value":"a\"b\nc")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("bytes":"\\xff\\x00z")"), std::string::npos) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1);
}

TEST(LogTest, LevelsFilterAndStatusIsExpanded) {
  SetMinLogLevel(LogLevel::kWarning);
  const std::string out = CaptureStderr([] {
    LogInfo("hidden");
    LogError("shown").With(absl::UnavailableError("db down"));
  });
  SetMinLogLevel(LogLevel::kInfo);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find(R"("code":"UNAVAILABLE","error":"db down")"), std::string::npos) << out;
  LogLevel level;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
}

}  // namespace
}  // namespace audit
