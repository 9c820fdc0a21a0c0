// Turns one Kafka message into a normalised event, or a classified reason it cannot be one.
//
// Accepted encodings, chosen per message:
//   1. `content-type: application/cloudevents+json...` -> CloudEvents JSON (structured mode)
//   2. any `ce_` header                               -> CloudEvents Kafka binary mode
//   3. `content-type: application/protobuf` (or x-protobuf) -> binary audit.v1.Event
//   4. no content-type: a value starting with '{' is structured JSON, anything else protobuf
// then the envelope rules (audit/envelope.h). Pure and thread-safe; never throws, never
// crashes on any input (fuzzed by //tests/fuzz:decoder_fuzzer).
#ifndef SERVICES_INGESTOR_DECODER_H_
#define SERVICES_INGESTOR_DECODER_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "audit/canonical.h"
#include "audit/envelope.h"
#include "audit/v1/event.pb.h"
#include "services/ingestor/kafka_record.h"

namespace audit::ingestor {

enum class Encoding { kUnknown, kStructuredJson, kBinaryMode, kProtobuf };

absl::string_view EncodingName(Encoding e);

struct DecoderOptions {
  // Messages whose key + headers + value exceed this are dead-lettered as oversized.
  size_t max_message_bytes = 1 << 20;
};

struct Decoded {
  // OK, or InvalidArgument with an ErrorClass payload (ErrorClassOf) and a readable reason.
  absl::Status status;
  Encoding encoding = Encoding::kUnknown;
  v1::Event event;            // normalised when status is OK; partial (maybe empty) otherwise
  Sha256Digest content_hash;  // valid when status is OK
};

Decoded Decode(const KafkaRecord& record, const DecoderOptions& options);

// The same into `*out`, replacing everything in it. A reused `out` keeps its event's buffers,
// so decoding a stream of similar messages into recycled Decodeds allocates next to nothing.
void DecodeInto(const KafkaRecord& record, const DecoderOptions& options, Decoded* out);

// The size Decode compares with max_message_bytes.
size_t MessageSize(const KafkaRecord& record);

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_DECODER_H_
