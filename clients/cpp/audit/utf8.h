// UTF-8 validation shared by the envelope rules and the JSON parser.
#ifndef CLIENTS_CPP_AUDIT_UTF8_H_
#define CLIENTS_CPP_AUDIT_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace audit {

// Returns the byte offset of the first byte that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF), or
// absl::string_view::npos if `text` is entirely valid. These are exactly the sequences
// PostgreSQL's UTF8 encoding check accepts.
size_t FindInvalidUtf8(absl::string_view text);

inline bool IsValidUtf8(absl::string_view text) {
  return FindInvalidUtf8(text) == absl::string_view::npos;
}

// Appends `code_point` (which must be a Unicode scalar value) as UTF-8.
void AppendUtf8(char32_t code_point, std::string* out);

// A printable, bounded rendering of possibly hostile bytes for error messages and logs:
// at most `max_bytes` input bytes, quoted, with non-printable ASCII and invalid UTF-8 shown as
// \xNN escapes and an ellipsis when cut. Never echoes more than a few hundred bytes.
std::string QuoteForMessage(absl::string_view bytes, size_t max_bytes = 64);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_UTF8_H_
