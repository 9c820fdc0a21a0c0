// Encoder for PostgreSQL's binary COPY format (COPY ... FROM STDIN (FORMAT binary)).
//
// Binary COPY skips text escaping and parsing on both ends; the ingestor writes whole batches
// of events this way. Usage:
//
//   BinaryCopyWriter w;
//   w.StartRow(2); w.Int64(1); w.Text("a");
//   absl::Status s = pg::CopyIn(conn, "COPY t (id, name) FROM STDIN (FORMAT binary)",
//                               w.Finish());
//
// Not thread-safe. Values must match the column types exactly (bigint, integer, text, bytea,
// jsonb, timestamptz) or the server rejects the COPY.
#ifndef SERVICES_COMMON_COPY_BINARY_H_
#define SERVICES_COMMON_COPY_BINARY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audit::pg {

class BinaryCopyWriter {
 public:
  BinaryCopyWriter();

  void StartRow(int16_t field_count);
  void Null();
  void Int16(int16_t v);  // smallint
  void Int32(int32_t v);
  void Int64(int64_t v);
  void Text(absl::string_view v);   // text / varchar (UTF-8 bytes)
  void Bytea(absl::string_view v);  // bytea
  void Jsonb(absl::string_view json_text);
  void TimestampMicros(int64_t unix_micros);  // timestamptz
  // bytea[] (one dimension); nullopt elements are NULL.
  void ByteaArray(absl::Span<const std::optional<absl::string_view>> values);

  // Convenience: NULL when `v` is empty.
  void TextOrNull(absl::string_view v) { v.empty() ? Null() : Text(v); }

  // Appends the trailer and returns the whole stream (or, after Drain(), the rest). Call once.
  const std::string& Finish();
  // Moves out what has been written so far (the header first), for streaming a COPY in chunks
  // (pg::CopyStream) while the rest is still being encoded.
  std::string Drain();
  size_t rows() const { return rows_; }
  size_t size() const { return buffer_.size(); }

 private:
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  std::string buffer_;
  size_t rows_ = 0;
};

}  // namespace audit::pg

#endif  // SERVICES_COMMON_COPY_BINARY_H_
