#include "services/common/copy_binary.h"

namespace audit::pg {
namespace {

// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
constexpr int64_t kPostgresEpochOffsetMicros = 946684800LL * 1000000LL;
constexpr uint32_t kByteaOid = 17;

}  // namespace

BinaryCopyWriter::BinaryCopyWriter() {
  buffer_.reserve(1 << 16);
  buffer_.append("PGCOPY\n\377\r\n\0", 11);
  U32(0);  // flags
  U32(0);  // header extension length
}

void BinaryCopyWriter::U16(uint16_t v) {
  buffer_.push_back(static_cast<char>(v >> 8));
  buffer_.push_back(static_cast<char>(v));
}

void BinaryCopyWriter::U32(uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) buffer_.push_back(static_cast<char>(v >> s));
}

void BinaryCopyWriter::U64(uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) buffer_.push_back(static_cast<char>(v >> s));
}

void BinaryCopyWriter::StartRow(int16_t field_count) {
  ++rows_;
  U16(static_cast<uint16_t>(field_count));
}

void BinaryCopyWriter::Null() { U32(0xFFFFFFFFu); }

void BinaryCopyWriter::Int16(int16_t v) {
  U32(2);
  U16(static_cast<uint16_t>(v));
}

void BinaryCopyWriter::Int32(int32_t v) {
  U32(4);
  U32(static_cast<uint32_t>(v));
}

void BinaryCopyWriter::Int64(int64_t v) {
  U32(8);
  U64(static_cast<uint64_t>(v));
}

void BinaryCopyWriter::Text(absl::string_view v) {
  U32(static_cast<uint32_t>(v.size()));
  buffer_.append(v.data(), v.size());
}

void BinaryCopyWriter::Bytea(absl::string_view v) { Text(v); }

void BinaryCopyWriter::Jsonb(absl::string_view json_text) {
  U32(static_cast<uint32_t>(json_text.size() + 1));
  buffer_.push_back(1);  // jsonb binary format version
  buffer_.append(json_text.data(), json_text.size());
}

void BinaryCopyWriter::TimestampMicros(int64_t unix_micros) {
  Int64(unix_micros - kPostgresEpochOffsetMicros);
}

void BinaryCopyWriter::ByteaArray(absl::Span<const std::optional<absl::string_view>> values) {
  size_t payload = 20;  // ndim, has_null, elem oid, dim length, lower bound
  bool has_null = false;
  for (const auto& v : values) {
    payload += 4 + (v.has_value() ? v->size() : 0);
    has_null |= !v.has_value();
  }
  if (values.empty()) payload = 12;  // zero dimensions
  U32(static_cast<uint32_t>(payload));
  U32(values.empty() ? 0 : 1);  // ndim
  U32(has_null ? 1 : 0);
  U32(kByteaOid);
  if (values.empty()) return;
  U32(static_cast<uint32_t>(values.size()));
  U32(1);  // lower bound
  for (const auto& v : values) {
    if (!v.has_value()) {
      Null();
    } else {
      Text(*v);
    }
  }
}

std::string BinaryCopyWriter::Drain() {
  std::string out;
  out.swap(buffer_);
  buffer_.reserve(out.capacity());
  return out;
}

const std::string& BinaryCopyWriter::Finish() {
  U16(0xFFFF);
  return buffer_;
}

}  // namespace audit::pg
