// The canonical byte encoding of an event's content, and its SHA-256 (the content hash).
//
// Two deliveries of the same (source, id) are "identical" when their content hashes are
// equal; the tamper-evidence chain hashes stored records that embed this hash. The layout is
// specified in docs/API.md ("Canonical encoding") precisely enough to re-implement:
//
//   "audit.v1.EventContent" 0x00, then for each present field in ascending field number:
//   u8 field number | u32 big-endian length | bytes
//
// where strings are their UTF-8 bytes, `time` (6) is an int64 big-endian count of
// microseconds since 1970-01-01T00:00:00Z, `sequence` (16) a uint64 big-endian, JSON data
// (10) the canonical jsonb text, other data (9) the raw bytes, and each extension (17, one
// entry per extension, sorted by name bytewise) is u32 name length | name | value. Absent or
// empty fields are omitted.
#ifndef CLIENTS_CPP_AUDIT_CANONICAL_H_
#define CLIENTS_CPP_AUDIT_CANONICAL_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "audit/v1/event.pb.h"

namespace audit {

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 of `bytes` (OpenSSL).
Sha256Digest Sha256(absl::string_view bytes);

// Appends the canonical content encoding of a normalised event (see NormalizeEvent) to `out`.
void AppendCanonicalContent(const v1::Event& event, std::string* out);

// SHA-256 of the canonical content encoding. Thread-safe.
Sha256Digest ContentHash(const v1::Event& event);

// Big-endian appenders used by the canonical encodings.
void AppendU32(uint32_t v, std::string* out);
void AppendU64(uint64_t v, std::string* out);

// Lowercase hex of a digest, for logs and messages.
std::string HexDigest(const Sha256Digest& digest);

inline absl::string_view DigestBytes(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_CANONICAL_H_
