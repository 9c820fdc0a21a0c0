// Fuzzes the strict JSON parser behind event data and data_contains: never crashes, the
// tree-free CanonicalizeJson agrees with CanonicalJson(ParseJson()) (same text, same error),
// and the canonical text of anything it accepts parses again to the same canonical text (the
// content hash depends on that being stable).
#include <string>

#include "audit/json.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<audit::JsonValue> v = audit::ParseJson(text);
  // The tree-free path (what the ingestor runs) agrees with the tree on everything.
  absl::StatusOr<std::string> direct = audit::CanonicalizeJson(text);
  FUZZ_CHECK(direct.ok() == v.ok());
  if (!v.ok()) {
    FUZZ_CHECK(direct.status() == v.status());
    return 0;
  }
  const std::string canonical = audit::CanonicalJson(*v);
  FUZZ_CHECK(*direct == canonical);
  absl::StatusOr<audit::JsonValue> again = audit::ParseJson(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(audit::CanonicalJson(*again) == canonical);
  return 0;
}
