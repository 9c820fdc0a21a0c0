#include "services/common/config.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_url, "default", "test flag");
ABSL_FLAG(int, test_batch, 10, "test flag");

namespace audit {
namespace {

TEST(ConfigTest, EnvironmentSetsListedFlags) {
  setenv("AUDIT_TEST_URL", "postgresql://x", 1);
  setenv("AUDIT_TEST_BATCH", "42", 1);
  ASSERT_TRUE(
      ApplyEnvironmentToFlags({{"test_url", "AUDIT_TEST_URL"}, {"test_batch", "AUDIT_TEST_BATCH"}})
          .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_url), "postgresql://x");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_batch), 42);
  unsetenv("AUDIT_TEST_URL");
  unsetenv("AUDIT_TEST_BATCH");
}

TEST(ConfigTest, UnsetVariablesLeaveDefaults) {
  absl::SetFlag(&FLAGS_test_batch, 10);
  unsetenv("AUDIT_TEST_BATCH");
  ASSERT_TRUE(ApplyEnvironmentToFlags({{"test_batch", "AUDIT_TEST_BATCH"}}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_batch), 10);
}

TEST(ConfigTest, BadValuesNameTheVariable) {
  setenv("AUDIT_TEST_BATCH", "many", 1);
  absl::Status s = ApplyEnvironmentToFlags({{"test_batch", "AUDIT_TEST_BATCH"}});
  unsetenv("AUDIT_TEST_BATCH");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("AUDIT_TEST_BATCH"), absl::string_view::npos) << s;
}

TEST(ConfigTest, UnknownFlagIsNotFound) {
  EXPECT_EQ(ApplyEnvironmentToFlags({{"no_such_flag", "X"}}).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace audit
