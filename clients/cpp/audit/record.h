// What the log's leaves and chain commit to (docs/VERIFICATION.md, "Records").
//
//   record = "audit.v1.EventRecord" 0x00
//            | u64 position | i64 recorded_at (µs since the Unix epoch)
//            | u32 len | topic | u32 partition | u64 offset | content_hash (32 bytes)
//   leaf_hash  = SHA-256(0x00 || record)            (an RFC 6962 leaf)
//   chain_hash = SHA-256(0x02 || previous chain_hash || leaf_hash), 32 zero bytes before 1
//
// All integers big-endian, signed ones two's complement. Thread-safe.
#ifndef CLIENTS_CPP_AUDIT_RECORD_H_
#define CLIENTS_CPP_AUDIT_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "audit/canonical.h"
#include "audit/v1/event.pb.h"

namespace audit {

// The chain hash "before position 1".
inline constexpr Sha256Digest kGenesisChainHash = {};

void AppendCanonicalRecord(int64_t position, int64_t recorded_at_micros, absl::string_view topic,
                           int32_t partition, int64_t offset, const Sha256Digest& content_hash,
                           std::string* out);

Sha256Digest RecordLeafHash(int64_t position, int64_t recorded_at_micros, absl::string_view topic,
                            int32_t partition, int64_t offset, const Sha256Digest& content_hash);

// SHA-256(0x02 || previous || leaf).
Sha256Digest ChainHash(const Sha256Digest& previous, const Sha256Digest& leaf);

// Recomputed from a stored event's fields alone (its content hash recomputed from the
// envelope, not taken from the message): what a verifier compares stored hashes with.
Sha256Digest RecomputeContentHash(const v1::StoredEvent& e);
Sha256Digest RecomputeLeafHash(const v1::StoredEvent& e);

// A 32-byte digest from bytes, if they are 32 bytes long.
bool DigestFromBytes(absl::string_view bytes, Sha256Digest* out);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_RECORD_H_
