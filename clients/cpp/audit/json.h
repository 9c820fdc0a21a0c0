// A strict JSON parser (RFC 8259) whose canonical output is exactly PostgreSQL's jsonb text.
//
// The store keeps JSON event data as jsonb, which normalises it: object keys sorted (shorter
// first, then bytewise), duplicate keys reduced to the last one, numbers in PostgreSQL numeric
// form (1e2 -> 100, 1.0e-5 -> 0.000010, -0 -> 0), strings re-escaped, ", " and ": " separators.
// CanonicalJson() reproduces that text byte for byte, so the ingestor can hash the data before
// inserting it and anyone can re-hash `data::text` read back from the store (docs/API.md,
// "Canonical encoding"). json_pg_test checks the equivalence against a real PostgreSQL.
//
// The parser accepts exactly the documents jsonb accepts and rejects, with a precise message,
// everything it would refuse: invalid UTF-8, unescaped control characters, \u0000, lone
// surrogates, numbers outside numeric's range, nesting beyond JsonParseOptions::max_depth.
//
// Thread safety: all functions are reentrant. Example:
//
//   absl::StatusOr<JsonValue> v = ParseJson(R"({"b": 1, "a": 1.50})");
//   if (v.ok()) std::string text = CanonicalJson(*v);  // {"a": 1.50, "b": 1}
#ifndef CLIENTS_CPP_AUDIT_JSON_H_
#define CLIENTS_CPP_AUDIT_JSON_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audit {

// A parsed JSON value. Numbers keep their exact decimal value as PostgreSQL numeric text.
struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type = Type::kNull;
  bool boolean = false;
  // kNumber: canonical numeric text (e.g. "100", "0.000010"); kString: the decoded UTF-8 value.
  std::string scalar;
  std::vector<JsonValue> elements;                         // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject, input order

  // Declared here, defined where JsonValue is complete (clang needs that for the recursive
  // std::pair member).
  JsonValue();
  JsonValue(const JsonValue&);
  JsonValue(JsonValue&&) noexcept;
  JsonValue& operator=(const JsonValue&);
  JsonValue& operator=(JsonValue&&) noexcept;
  ~JsonValue();

  bool is_object() const { return type == Type::kObject; }
  bool is_string() const { return type == Type::kString; }
  // The value of the last member named `key`, or nullptr (also when not an object).
  const JsonValue* Find(absl::string_view key) const;
  // True if an object has two members with the same name.
  bool HasDuplicateKeys() const;
};

struct JsonParseOptions {
  // Arrays and objects nested deeper than this are rejected (PostgreSQL would fail on its
  // stack depth limit at a few thousand levels, with an error rather than a result).
  int max_depth = 128;
};

// Parses a complete JSON text (surrounding whitespace allowed). Errors are InvalidArgument
// with the byte offset and what was wrong, e.g. "offset 12: unescaped control character".
absl::StatusOr<JsonValue> ParseJson(absl::string_view text, const JsonParseOptions& options = {});

// The jsonb text of `value`, as PostgreSQL's `jsonb::text` prints it.
std::string CanonicalJson(const JsonValue& value);
void AppendCanonicalJson(const JsonValue& value, std::string* out);

// Appends `utf8` as a JSON string literal escaped the way jsonb output escapes it
// (\" \\ \b \f \n \r \t, other characters below U+0020 as \u00xx, everything else verbatim).
void AppendJsonString(absl::string_view utf8, std::string* out);

// Parses and canonicalises in one step.
absl::StatusOr<std::string> CanonicalizeJson(absl::string_view text,
                                             const JsonParseOptions& options = {});
// The same into `*out` (replacing its contents, reusing its buffer); on error `*out` is
// unspecified.
absl::Status CanonicalizeJsonTo(absl::string_view text, std::string* out,
                                const JsonParseOptions& options = {});

// True if `media_type` (a datacontenttype / content-type value, parameters allowed) denotes
// JSON: application/json, text/json or any "+json" structured syntax suffix.
bool IsJsonMediaType(absl::string_view media_type);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_JSON_H_
