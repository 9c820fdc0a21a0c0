// auditctl's verification: export bundles, and verifying a log from a bundle or a server with
// the SDK's LogVerifier (audit/verify.h), and saying what was proven in words.
//
//   BundleWriter w(stdout);  w.Header("host:50051");  w.Checkpoint(c) ...;  w.Event(e) ...;
//   std::ifstream in("audit.bundle");
//   absl::StatusOr<Verification> v = VerifyBundle(in, {public_key});
//   std::puts(Describe(*v).c_str());  // exit status: v->report.ok ? 0 : 1
//
// Not thread-safe.
#ifndef TOOLS_AUDITCTL_VERIFICATION_H_
#define TOOLS_AUDITCTL_VERIFICATION_H_

#include <cstdio>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/v1/bundle.pb.h"
#include "audit/verify.h"

namespace audit::cli {

inline constexpr char kBundleFormat[] = "audit.v1.bundle";

class BundleWriter {
 public:
  explicit BundleWriter(std::FILE* out) : out_(out) {}
  absl::Status Header(absl::string_view origin);
  absl::Status Checkpoint(const v1::Checkpoint& c);
  absl::Status Event(const v1::StoredEvent& e);

 private:
  absl::Status Write(const v1::BundleEntry& entry);
  std::FILE* out_;
};

// The outcome of a verification, with what is needed to describe it.
struct Verification {
  VerifyReport report;
  // The newest valid checkpoint covering report.verified_through, if any.
  std::optional<v1::Checkpoint> proven_by;
  std::optional<v1::Checkpoint> last_checkpoint;  // the newest entry seen
  int64_t unsigned_tail = 0;                      // events after the newest entry's tree size
};

// Feeds a LogVerifier and keeps what Describe needs. Checkpoints must all come before the
// events (or at least before the events reach their tree size).
class VerificationRun {
 public:
  // `anchor`: a checkpoint trusted from an earlier verification. The log must still hold it,
  // byte for byte (same seq, size, root, chain and signature), and prove through its tree size;
  // a log re-signed from scratch, even with the right key, fails here.
  explicit VerificationRun(std::vector<std::string> trusted_keys,
                           std::optional<v1::Checkpoint> anchor = std::nullopt);
  void AddCheckpoint(const v1::Checkpoint& c);
  void AddEvent(const v1::StoredEvent& e);
  bool failed() const { return verifier_.failed(); }
  Verification Finish();

 private:
  LogVerifier verifier_;
  std::optional<v1::Checkpoint> anchor_;
  bool anchor_seen_ = false;
  bool anchor_differs_ = false;
  std::vector<v1::Checkpoint> checkpoints_;
};

// Verifies a bundle. INVALID_ARGUMENT naming the line if it is not a well-formed bundle;
// otherwise the verification (report.ok false and first_bad_position on tampering).
absl::StatusOr<Verification> VerifyBundle(std::istream& in,
                                          const std::vector<std::string>& trusted_keys,
                                          std::optional<v1::Checkpoint> anchor = std::nullopt);

// Several lines for people: what was checked, what is proven by which checkpoint, what is not
// yet covered, and on failure the first bad position and why.
std::string Describe(const Verification& v);

}  // namespace audit::cli

#endif  // TOOLS_AUDITCTL_VERIFICATION_H_
