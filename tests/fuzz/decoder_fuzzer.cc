// Fuzzes the Kafka message decoder in all three encodings (and messages of no encoding).
// Never crashes, and every accepted event keeps its meaning through every encoding: its
// content hash survives protobuf, structured JSON and binary mode round trips, and it is in
// normal form. A rejection always carries a dead-letter class.
#include <fuzzer/FuzzedDataProvider.h>

#include <optional>
#include <string>
#include <vector>

#include "audit/canonical.h"
#include "audit/cloudevents.h"
#include "audit/envelope.h"
#include "google/protobuf/stubs/logging.h"
#include "services/ingestor/decoder.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Protobuf's parse warnings (invalid UTF-8 in strings) are expected here, by the million.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

using audit::ingestor::Decode;
using audit::ingestor::Decoded;
using audit::ingestor::KafkaRecord;

constexpr const char* kHeaderNames[] = {"ce_specversion",
                                        "ce_id",
                                        "ce_source",
                                        "ce_type",
                                        "ce_subject",
                                        "ce_time",
                                        "ce_datacontenttype",
                                        "ce_dataschema",
                                        "ce_correlationid",
                                        "ce_causationid",
                                        "ce_actor",
                                        "ce_tenant",
                                        "ce_traceparent",
                                        "ce_sequence",
                                        "ce_region",
                                        "content-type",
                                        "ce_",
                                        "CE_ID"};

constexpr const char* kContentTypes[] = {"application/protobuf",
                                         "application/x-protobuf",
                                         "application/cloudevents+json",
                                         "application/cloudevents+json; charset=utf-8",
                                         "application/json",
                                         "text/plain",
                                         ""};

void CheckRoundTrips(const Decoded& d) {
  // Normal form: normalising again changes nothing.
  audit::v1::Event again = d.event;
  FUZZ_CHECK(audit::NormalizeEvent(&again).ok());
  FUZZ_CHECK(audit::ContentHash(again) == d.content_hash);
  FUZZ_CHECK(audit::ContentHash(d.event) == d.content_hash);
  // Protobuf.
  absl::StatusOr<audit::v1::Event> pb = audit::ParseProtobufEnvelope(d.event.SerializeAsString());
  FUZZ_CHECK(pb.ok());
  FUZZ_CHECK(audit::NormalizeEvent(&*pb).ok());
  FUZZ_CHECK(audit::ContentHash(*pb) == d.content_hash);
  // Structured JSON.
  absl::StatusOr<audit::v1::Event> json =
      audit::ParseStructuredJson(audit::ToStructuredJson(d.event));
  FUZZ_CHECK(json.ok());
  FUZZ_CHECK(audit::NormalizeEvent(&*json).ok());
  FUZZ_CHECK(audit::ContentHash(*json) == d.content_hash);
  // Binary mode.
  audit::Headers headers;
  std::string value;
  audit::ToBinaryMode(d.event, &headers, &value);
  std::vector<audit::HeaderView> views;
  for (const auto& [k, v] : headers) views.push_back({k, v});
  absl::StatusOr<audit::v1::Event> binary = audit::ParseBinaryMode(views, value);
  FUZZ_CHECK(binary.ok());
  FUZZ_CHECK(audit::NormalizeEvent(&*binary).ok());
  FUZZ_CHECK(audit::ContentHash(*binary) == d.content_hash);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  KafkaRecord r;
  r.topic = "orders.events";
  r.offset = 7;
  std::vector<std::string> storage;
  storage.reserve(64);
  std::vector<std::pair<size_t, std::optional<size_t>>> header_refs;
  const int mode = in.ConsumeIntegralInRange(0, 3);
  if (mode == 0 || mode == 1) {
    storage.push_back("content-type");
    storage.push_back(mode == 0 ? "application/protobuf" : "application/cloudevents+json");
    header_refs.push_back({0, 1});
  } else if (mode == 2) {
    const int n = in.ConsumeIntegralInRange(0, 20);
    for (int i = 0; i < n; ++i) {
      storage.push_back(in.PickValueInArray(kHeaderNames));
      const size_t k = storage.size() - 1;
      if (in.ConsumeBool()) {
        storage.push_back(storage[k] == "content-type" ? in.PickValueInArray(kContentTypes)
                                                       : in.ConsumeRandomLengthString(64));
        header_refs.push_back({k, storage.size() - 1});
      } else {
        header_refs.push_back({k, std::nullopt});
      }
    }
  } else {
    const int n = in.ConsumeIntegralInRange(0, 4);
    for (int i = 0; i < n; ++i) {
      storage.push_back(in.ConsumeRandomLengthString(16));
      storage.push_back(in.ConsumeRandomLengthString(64));
      header_refs.push_back({storage.size() - 2, storage.size() - 1});
    }
  }
  for (const auto& [k, v] : header_refs) {
    r.headers.push_back(
        {storage[k], v.has_value() ? std::optional<absl::string_view>(storage[*v]) : std::nullopt});
  }
  const bool null_value = in.ConsumeProbability<float>() < 0.02f;
  const std::string value = in.ConsumeRemainingBytesAsString();
  if (!null_value) r.value = value;
  audit::ingestor::DecoderOptions options;
  options.max_message_bytes = 64 * 1024;
  const Decoded d = Decode(r, options);
  if (d.status.ok()) {
    CheckRoundTrips(d);
  } else {
    FUZZ_CHECK(audit::ErrorClassOf(d.status) != audit::ErrorClass::kNone);
  }
  return 0;
}
