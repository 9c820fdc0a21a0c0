#include "audit/record.h"

#include <algorithm>
#include <string>

#include "audit/merkle.h"
#include "audit/rfc3339.h"

namespace audit {
namespace {

constexpr absl::string_view kRecordMagic("audit.v1.EventRecord\0", 21);

}  // namespace

void AppendCanonicalRecord(int64_t position, int64_t recorded_at_micros, absl::string_view topic,
                           int32_t partition, int64_t offset, const Sha256Digest& content_hash,
                           std::string* out) {
  out->append(kRecordMagic.data(), kRecordMagic.size());
  AppendU64(static_cast<uint64_t>(position), out);
  AppendU64(static_cast<uint64_t>(recorded_at_micros), out);
  AppendU32(static_cast<uint32_t>(topic.size()), out);
  out->append(topic.data(), topic.size());
  AppendU32(static_cast<uint32_t>(partition), out);
  AppendU64(static_cast<uint64_t>(offset), out);
  out->append(reinterpret_cast<const char*>(content_hash.data()), content_hash.size());
}

Sha256Digest RecordLeafHash(int64_t position, int64_t recorded_at_micros, absl::string_view topic,
                            int32_t partition, int64_t offset, const Sha256Digest& content_hash) {
  thread_local std::string record;
  record.clear();
  AppendCanonicalRecord(position, recorded_at_micros, topic, partition, offset, content_hash,
                        &record);
  return merkle::LeafHash(record);
}

Sha256Digest ChainHash(const Sha256Digest& previous, const Sha256Digest& leaf) {
  char buf[1 + 2 * 32];
  buf[0] = '\x02';
  std::copy(previous.begin(), previous.end(), buf + 1);
  std::copy(leaf.begin(), leaf.end(), buf + 1 + previous.size());
  return Sha256(absl::string_view(buf, sizeof buf));
}

Sha256Digest RecomputeContentHash(const v1::StoredEvent& e) { return ContentHash(e.event()); }

Sha256Digest RecomputeLeafHash(const v1::StoredEvent& e) {
  return RecordLeafHash(e.position(), ToUnixMicros(e.recorded_time()), e.provenance().topic(),
                        e.provenance().partition(), e.provenance().offset(),
                        RecomputeContentHash(e));
}

bool DigestFromBytes(absl::string_view bytes, Sha256Digest* out) {
  if (bytes.size() != out->size()) return false;
  std::copy(bytes.begin(), bytes.end(), out->begin());
  return true;
}

}  // namespace audit
