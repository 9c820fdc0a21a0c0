#include "audit/canonical.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, whose per-call
// algorithm lookup costs several times a short hash (docs/DECISIONS.md, 2026-11-26).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/rfc3339.h"

namespace audit {
namespace {

constexpr absl::string_view kContentMagic("audit.v1.EventContent\0", 22);

void AppendField(uint8_t tag, absl::string_view value, std::string* out) {
  if (value.empty()) return;
  out->push_back(static_cast<char>(tag));
  AppendU32(static_cast<uint32_t>(value.size()), out);
  absl::StrAppend(out, value);
}

void AppendFixed64(uint8_t tag, uint64_t value, std::string* out) {
  out->push_back(static_cast<char>(tag));
  AppendU32(8, out);
  AppendU64(value, out);
}

}  // namespace

void AppendU32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

Sha256Digest Sha256(absl::string_view bytes) {
  // The low-level interface, as in merkle.cc: OpenSSL 3's one-shot SHA256() looks the
  // algorithm up on every call, which costs more than hashing a short input (about 400 ns
  // against 70 ns for 72 bytes on this project's machines; see docs/PERFORMANCE.md).
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, bytes.data(), bytes.size());
  Sha256Digest d;
  SHA256_Final(d.data(), &ctx);
  return d;
}

void AppendCanonicalContent(const v1::Event& e, std::string* out) {
  absl::StrAppend(out, kContentMagic);
  AppendField(1, e.id(), out);
  AppendField(2, e.source(), out);
  AppendField(3, e.type(), out);
  AppendField(4, e.spec_version(), out);
  AppendField(5, e.subject(), out);
  if (e.has_time()) AppendFixed64(6, static_cast<uint64_t>(ToUnixMicros(e.time())), out);
  AppendField(7, e.data_content_type(), out);
  AppendField(8, e.data_schema(), out);
  if (e.data_case() == v1::Event::kBinaryData) AppendField(9, e.binary_data(), out);
  if (e.data_case() == v1::Event::kTextData) AppendField(10, e.text_data(), out);
  AppendField(11, e.correlation_id(), out);
  AppendField(12, e.causation_id(), out);
  AppendField(13, e.actor(), out);
  AppendField(14, e.tenant(), out);
  AppendField(15, e.traceparent(), out);
  if (e.has_sequence()) AppendFixed64(16, e.sequence(), out);
  if (!e.extensions().empty()) {
    std::vector<const google::protobuf::MapPair<std::string, std::string>*> sorted;
    sorted.reserve(e.extensions_size());
    for (const auto& kv : e.extensions()) sorted.push_back(&kv);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* kv : sorted) {
      out->push_back(static_cast<char>(17));
      AppendU32(static_cast<uint32_t>(4 + kv->first.size() + kv->second.size()), out);
      AppendU32(static_cast<uint32_t>(kv->first.size()), out);
      absl::StrAppend(out, kv->first);
      absl::StrAppend(out, kv->second);
    }
  }
}

Sha256Digest ContentHash(const v1::Event& event) {
  // One buffer per thread: hashing allocates nothing once it has grown to the events' size.
  thread_local std::string buffer;
  buffer.clear();
  AppendCanonicalContent(event, &buffer);
  const Sha256Digest digest = Sha256(buffer);
  if (buffer.capacity() > (size_t{1} << 16)) std::string().swap(buffer);
  return digest;
}

std::string HexDigest(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

}  // namespace audit
