// Fuzzes the validation of every request message and page tokens: never crashes, every
// rejection is INVALID_ARGUMENT naming a field ("field: why"), and a request that passes
// validation serialises and validates again identically.
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "absl/strings/match.h"
#include "audit/v1/audit_service.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "services/query/page_token.h"
#include "services/query/request_validation.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Protobuf's parse warnings (invalid UTF-8 in strings) are expected here, by the million.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

template <typename Request>
void Fuzz(const std::string& bytes) {
  Request r;
  if (!r.ParseFromString(bytes)) return;
  const absl::Status s = audit::query::Validate(r);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(absl::StrContains(s.message(), ": "));
    FUZZ_CHECK(!absl::StartsWith(s.message(), ":"));
    return;
  }
  Request again;
  FUZZ_CHECK(again.ParseFromString(r.SerializeAsString()));
  FUZZ_CHECK(audit::query::Validate(again).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int which = in.ConsumeIntegralInRange(0, 6);
  const std::string bytes = in.ConsumeRemainingBytesAsString();
  switch (which) {
    case 0:
      Fuzz<audit::v1::GetEventRequest>(bytes);
      break;
    case 1:
      Fuzz<audit::v1::ListEventsRequest>(bytes);
      break;
    case 2:
      Fuzz<audit::v1::GetSubjectHistoryRequest>(bytes);
      break;
    case 3:
      Fuzz<audit::v1::ReplayEventsRequest>(bytes);
      break;
    case 4:
      Fuzz<audit::v1::GetStatisticsRequest>(bytes);
      break;
    case 5:
      Fuzz<audit::v1::ListDeadLettersRequest>(bytes);
      break;
    default: {
      // A forged page token never decodes, and never crashes.
      static const audit::query::PageTokenCodec codec(std::string(32, 'k'));
      audit::v1::ListEventsRequest r;
      const absl::StatusOr<int64_t> cursor = codec.Decode(r, bytes);
      if (!cursor.ok()) {
        FUZZ_CHECK(absl::StartsWith(cursor.status().message(), "page_token"));
      } else {
        FUZZ_CHECK(codec.Encode(r, *cursor) == bytes);  // only genuine tokens decode
      }
      break;
    }
  }
  return 0;
}
