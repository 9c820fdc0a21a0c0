#include "tools/auditctl/verification.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit/checkpoint.h"
#include "audit/signing.h"
#include "audit/test_log.h"
#include "gtest/gtest.h"

namespace audit::cli {
namespace {

// The bundle of `log` as text.
std::string BundleOf(const testing::TestLog& log) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buffer, &size);
  BundleWriter w(f);
  EXPECT_TRUE(w.Header("test").ok());
  for (const auto& c : log.checkpoints) EXPECT_TRUE(w.Checkpoint(c).ok());
  for (const auto& e : log.events) EXPECT_TRUE(w.Event(e).ok());
  std::fclose(f);
  std::string out(buffer, size);
  std::free(buffer);
  return out;
}

absl::StatusOr<Verification> Verify(const std::string& bundle, const std::string& key) {
  std::istringstream in(bundle);
  return VerifyBundle(in, {key});
}

class VerificationTest : public ::testing::Test {
 protected:
  SigningKey key_ = SigningKey::Generate();
  testing::TestLog log_ = testing::BuildLog(57, 25, key_);  // checkpoints at 25 and 50
};

TEST_F(VerificationTest, AnIntactBundleVerifiesAndSaysWhatIsProven) {
  absl::StatusOr<Verification> v = Verify(BundleOf(log_), key_.public_key());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->report.ok) << v->report.problem;
  EXPECT_EQ(v->report.verified_through, 50);
  ASSERT_TRUE(v->proven_by.has_value());
  EXPECT_EQ(v->proven_by->seq(), 2);
  EXPECT_EQ(v->unsigned_tail, 7);
  const std::string text = Describe(*v);
  EXPECT_NE(text.find("positions 1..50 are proven by checkpoint seq 2"), std::string::npos) << text;
  EXPECT_NE(text.find("positions 51..57 chain correctly but no checkpoint covers them yet"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("OK"), std::string::npos);
}

TEST_F(VerificationTest, AnEditedBundleFailsAtTheEditedPosition) {
  std::vector<std::string> lines = absl::StrSplit(BundleOf(log_), '\n');
  // Line 0 is the header, 1..2 the checkpoints, 3.. the events: position 30 is line 32.
  std::string& line = lines[32];
  const size_t at = line.find("\"subject\":\"order-");
  ASSERT_NE(at, std::string::npos) << line;
  line.replace(at, 17, "\"subject\":\"ordeR-");
  absl::StatusOr<Verification> v = Verify(absl::StrJoin(lines, "\n"), key_.public_key());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->report.ok);
  EXPECT_EQ(v->report.first_bad_position, 30);
  EXPECT_NE(Describe(*v).find("FAILED at position 30"), std::string::npos) << Describe(*v);
}

TEST_F(VerificationTest, ABundleWithAnEventRemovedFailsWhereItWas) {
  std::vector<std::string> lines = absl::StrSplit(BundleOf(log_), '\n');
  lines.erase(lines.begin() + 2 + 40);  // position 40
  absl::StatusOr<Verification> v = Verify(absl::StrJoin(lines, "\n"), key_.public_key());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->report.ok);
  EXPECT_EQ(v->report.first_bad_position, 40);
}

TEST_F(VerificationTest, MalformedBundlesNameTheLine) {
  std::vector<std::string> lines = absl::StrSplit(BundleOf(log_), '\n');
  lines[5] = "{\"event\": 17}";
  absl::StatusOr<Verification> v = Verify(absl::StrJoin(lines, "\n"), key_.public_key());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("line 6"), std::string::npos) << v.status();
  EXPECT_FALSE(Verify("", key_.public_key()).ok());
  EXPECT_FALSE(Verify(lines[1], key_.public_key()).ok()) << "no header";
  // A checkpoint after the events.
  std::swap(lines[1], lines[10]);
  EXPECT_FALSE(Verify(absl::StrJoin(lines, "\n"), key_.public_key()).ok());
}

TEST_F(VerificationTest, AnAnchorFromAnEarlierAuditMustStillBeInTheLog) {
  const v1::Checkpoint anchor = log_.checkpoints[0];
  std::istringstream same(BundleOf(log_));
  absl::StatusOr<Verification> v = VerifyBundle(same, {key_.public_key()}, anchor);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->report.ok) << v->report.problem;

  // The same history re-signed from scratch (a stolen key): every signature verifies, but the
  // checkpoint the auditor kept is no longer there.
  testing::TestLog resigned = log_;
  resigned.checkpoints.clear();
  for (int size : {25, 50}) {
    resigned.checkpoints.push_back(testing::MakeCheckpoint(
        resigned.events, size,
        resigned.checkpoints.empty() ? nullptr : &resigned.checkpoints.back(), key_));
    resigned.checkpoints.back().set_note("re-signed");
    SignCheckpoint(key_, &resigned.checkpoints.back());
  }
  std::istringstream forged(BundleOf(resigned));
  v = VerifyBundle(forged, {key_.public_key()}, anchor);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->report.ok);
  EXPECT_NE(v->report.problem.find("was replaced"), std::string::npos) << v->report.problem;

  // A checkpoint log cut short before the anchor.
  testing::TestLog cut = log_;
  cut.checkpoints.clear();
  cut.events.resize(20);
  std::istringstream shorter(BundleOf(cut));
  v = VerifyBundle(shorter, {key_.public_key()}, log_.checkpoints[1]);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->report.ok);
  EXPECT_NE(v->report.problem.find("is missing"), std::string::npos) << v->report.problem;
}

TEST_F(VerificationTest, AnotherKeyIsNotTrusted) {
  absl::StatusOr<Verification> v = Verify(BundleOf(log_), SigningKey::Generate().public_key());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->report.ok);
  EXPECT_EQ(v->report.first_bad_position, 1);
  EXPECT_NE(v->report.problem.find("not trusted"), std::string::npos) << v->report.problem;
}

}  // namespace
}  // namespace audit::cli
