#include "audit/json.h"

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "audit/utf8.h"

namespace audit {

JsonValue::JsonValue() = default;
JsonValue::JsonValue(const JsonValue&) = default;
JsonValue::JsonValue(JsonValue&&) noexcept = default;
JsonValue& JsonValue::operator=(const JsonValue&) = default;
JsonValue& JsonValue::operator=(JsonValue&&) noexcept = default;
JsonValue::~JsonValue() = default;

namespace {

// PostgreSQL numeric limits (src/include/utils/numeric.h): at most 16383 digits after the
// decimal point (NUMERIC_DSCALE_MAX) and values below 10^131072 (NUMERIC_WEIGHT_MAX).
constexpr int64_t kMaxFractionDigits = 16383;
constexpr int64_t kMaxIntegerDigits = 131072;
// numeric_in refuses exponents of magnitude PG_INT32_MAX / 2 and beyond, even for zero.
constexpr int64_t kMaxExponentMagnitude = 1073741823;

// jsonb key order: shorter keys first, then bytewise.
bool JsonbKeyLess(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a.compare(b) < 0;
}

class Parser {
 public:
  Parser(absl::string_view text, const JsonParseOptions& options)
      : text_(text), options_(options) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    if (const size_t bad = FindInvalidUtf8(text_); bad != absl::string_view::npos) {
      return Error(bad, "invalid UTF-8");
    }
    JsonValue value;
    SkipWhitespace();
    if (absl::Status s = ParseValue(0, &value); !s.ok()) return s;
    SkipWhitespace();
    if (pos_ != text_.size()) return Error(pos_, "unexpected data after the JSON value");
    return value;
  }

  // Appends the canonical text of the document to `out` without building a tree: exactly
  // CanonicalJson(ParseDocument()), with the same checks and the same error messages (the
  // scalar parsers are shared; json_test and the JSON fuzzer compare the two).
  absl::Status CanonicalDocument(std::string* out) {
    if (const size_t bad = FindInvalidUtf8(text_); bad != absl::string_view::npos) {
      return Error(bad, "invalid UTF-8");
    }
    SkipWhitespace();
    if (absl::Status s = CanonicalValue(0, out); !s.ok()) return s;
    SkipWhitespace();
    if (pos_ != text_.size()) return Error(pos_, "unexpected data after the JSON value");
    return absl::OkStatus();
  }

 private:
  // An object member staged in the output: its decoded key and its canonical value text.
  struct StagedMember {
    size_t key_begin, key_end, value_begin, value_end;
  };

  absl::Status CanonicalValue(int depth, std::string* out) {
    if (AtEnd()) return Error(pos_, "unexpected end of input, expected a value");
    switch (Peek()) {
      case '{':
        return CanonicalObject(depth + 1, out);
      case '[':
        return CanonicalArray(depth + 1, out);
      case '"':
        return CanonicalString(out);
      case 't':
      case 'f':
      case 'n': {
        JsonValue literal;
        const absl::string_view word = Peek() == 't' ? "true" : Peek() == 'f' ? "false" : "null";
        if (absl::Status s = ParseLiteral(word, literal.type, false, &literal); !s.ok()) {
          return s;
        }
        out->append(word.data(), word.size());
        return absl::OkStatus();
      }
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) {
          number_.clear();
          if (absl::Status s = ParseNumber(&number_); !s.ok()) return s;
          out->append(number_);
          return absl::OkStatus();
        }
        return Error(pos_, "unexpected character, expected a value");
    }
  }

  // A string without escapes is its own canonical form (the input was checked as UTF-8, and
  // jsonb escapes only '"', '\\' and control characters, which cannot appear unescaped).
  absl::Status CanonicalString(std::string* out) {
    const size_t start = pos_;
    for (size_t p = pos_ + 1; p < text_.size(); ++p) {
      const unsigned char c = static_cast<unsigned char>(text_[p]);
      if (c == '"') {
        pos_ = p + 1;
        out->append(text_.data() + start, pos_ - start);
        return absl::OkStatus();
      }
      if (c == '\\' || c < 0x20) break;
    }
    decoded_.clear();
    if (absl::Status s = ParseString(&decoded_); !s.ok()) return s;
    AppendJsonString(decoded_, out);
    return absl::OkStatus();
  }

  absl::Status CanonicalArray(int depth, std::string* out) {
    absl::StatusOr<bool> empty = OpenContainer(depth, ']');
    if (!empty.ok()) return empty.status();
    if (*empty) {
      out->append("[]");
      return absl::OkStatus();
    }
    out->push_back('[');
    while (true) {
      SkipWhitespace();
      if (absl::Status s = CanonicalValue(depth, out); !s.ok()) return s;
      absl::StatusOr<bool> more = NextElement(']', "array");
      if (!more.ok()) return more.status();
      if (!*more) break;
      out->append(", ");
    }
    out->push_back(']');
    return absl::OkStatus();
  }

  // Members are staged at the end of `out` (decoded key, canonical value) as they are parsed,
  // then replaced by the object's canonical text: keys in jsonb order, the last duplicate
  // winning. Only one object is being replaced at a time, so one staging buffer serves all.
  absl::Status CanonicalObject(int depth, std::string* out) {
    absl::StatusOr<bool> empty = OpenContainer(depth, '}');
    if (!empty.ok()) return empty.status();
    if (*empty) {
      out->append("{}");
      return absl::OkStatus();
    }
    const size_t region = out->size();
    const size_t first = members_.size();
    while (true) {
      StagedMember m;
      m.key_begin = out->size();
      if (absl::Status s = ParseKey(out); !s.ok()) return s;
      m.key_end = out->size();
      m.value_begin = out->size();
      if (absl::Status s = CanonicalValue(depth, out); !s.ok()) return s;
      m.value_end = out->size();
      members_.push_back(m);
      absl::StatusOr<bool> more = NextElement('}', "object");
      if (!more.ok()) return more.status();
      if (!*more) break;
    }
    const absl::string_view staged_text(*out);
    const auto key = [&](const StagedMember& m) {
      return staged_text.substr(m.key_begin, m.key_end - m.key_begin);
    };
    const auto begin = members_.begin() + static_cast<std::ptrdiff_t>(first);
    std::stable_sort(begin, members_.end(), [&](const StagedMember& a, const StagedMember& b) {
      return JsonbKeyLess(key(a), key(b));
    });
    staged_.clear();
    staged_.push_back('{');
    bool first_written = true;
    for (auto it = begin; it != members_.end(); ++it) {
      if (it + 1 != members_.end() && key(*(it + 1)) == key(*it)) continue;
      if (!first_written) staged_.append(", ");
      first_written = false;
      AppendJsonString(key(*it), &staged_);
      staged_.append(": ");
      staged_.append(staged_text.data() + it->value_begin, it->value_end - it->value_begin);
    }
    staged_.push_back('}');
    members_.resize(first);
    out->resize(region);
    out->append(staged_);
    return absl::OkStatus();
  }

  absl::Status Error(size_t offset, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("offset ", offset, ": ", what));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipWhitespace() {
    while (!AtEnd()) {
      const char c = Peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  absl::Status ParseValue(int depth, JsonValue* out) {
    if (AtEnd()) return Error(pos_, "unexpected end of input, expected a value");
    switch (Peek()) {
      case '{':
        return ParseObject(depth + 1, out);
      case '[':
        return ParseArray(depth + 1, out);
      case '"':
        out->type = JsonValue::Type::kString;
        return ParseString(&out->scalar);
      case 't':
        return ParseLiteral("true", JsonValue::Type::kBool, true, out);
      case 'f':
        return ParseLiteral("false", JsonValue::Type::kBool, false, out);
      case 'n':
        return ParseLiteral("null", JsonValue::Type::kNull, false, out);
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) {
          out->type = JsonValue::Type::kNumber;
          return ParseNumber(&out->scalar);
        }
        return Error(pos_, "unexpected character, expected a value");
    }
  }

  absl::Status ParseLiteral(absl::string_view word, JsonValue::Type type, bool boolean,
                            JsonValue* out) {
    if (text_.substr(pos_, word.size()) != word) return Error(pos_, "invalid literal");
    pos_ += word.size();
    // "truex" must not parse as true followed by garbage in an unhelpful place.
    if (!AtEnd() && absl::ascii_isalnum(static_cast<unsigned char>(Peek()))) {
      return Error(pos_, "invalid literal");
    }
    out->type = type;
    out->boolean = boolean;
    return absl::OkStatus();
  }

  // At a container's opening character: checks the depth and steps in. True if the container
  // is empty (its closing character is then consumed too).
  absl::StatusOr<bool> OpenContainer(int depth, char close) {
    if (depth > options_.max_depth) return Error(pos_, "nesting too deep");
    ++pos_;  // '{' or '['
    SkipWhitespace();
    if (!AtEnd() && Peek() == close) {
      ++pos_;
      return true;
    }
    return false;
  }

  // After a member or an element: true at ',' (another follows), false at `close` (the end).
  absl::StatusOr<bool> NextElement(char close, absl::string_view container) {
    SkipWhitespace();
    if (AtEnd()) return Error(pos_, absl::StrCat("unexpected end of input in ", container));
    if (Peek() == ',') {
      ++pos_;
      return true;
    }
    if (Peek() == close) {
      ++pos_;
      return false;
    }
    return Error(
        pos_, absl::StrCat("expected ',' or '", absl::string_view(&close, 1), "' in ", container));
  }

  // An object member's key (decoded, appended to `key`) and the ':' after it.
  absl::Status ParseKey(std::string* key) {
    SkipWhitespace();
    if (AtEnd() || Peek() != '"') return Error(pos_, "expected an object key string");
    if (absl::Status s = ParseString(key); !s.ok()) return s;
    SkipWhitespace();
    if (AtEnd() || Peek() != ':') return Error(pos_, "expected ':' after object key");
    ++pos_;
    SkipWhitespace();
    return absl::OkStatus();
  }

  absl::Status ParseObject(int depth, JsonValue* out) {
    absl::StatusOr<bool> empty = OpenContainer(depth, '}');
    if (!empty.ok()) return empty.status();
    out->type = JsonValue::Type::kObject;
    if (*empty) return absl::OkStatus();
    while (true) {
      std::string key;
      if (absl::Status s = ParseKey(&key); !s.ok()) return s;
      out->members.emplace_back(std::move(key), JsonValue());
      if (absl::Status s = ParseValue(depth, &out->members.back().second); !s.ok()) return s;
      absl::StatusOr<bool> more = NextElement('}', "object");
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
  }

  absl::Status ParseArray(int depth, JsonValue* out) {
    absl::StatusOr<bool> empty = OpenContainer(depth, ']');
    if (!empty.ok()) return empty.status();
    out->type = JsonValue::Type::kArray;
    if (*empty) return absl::OkStatus();
    while (true) {
      SkipWhitespace();
      out->elements.emplace_back();
      if (absl::Status s = ParseValue(depth, &out->elements.back()); !s.ok()) return s;
      absl::StatusOr<bool> more = NextElement(']', "array");
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
  }

  // Reads 4 hex digits at pos_ into *value.
  bool ReadHex4(uint32_t* value) {
    if (text_.size() - pos_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    pos_ += 4;
    *value = v;
    return true;
  }

  absl::Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      // Copy the run of ordinary characters in one go.
      const size_t start = pos_;
      while (!AtEnd()) {
        const unsigned char c = static_cast<unsigned char>(Peek());
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++pos_;
      }
      absl::StrAppend(out, text_.substr(start, pos_ - start));
      if (AtEnd()) return Error(pos_, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(Peek());
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error(pos_, "unescaped control character in string");
      // Backslash escape.
      const size_t escape_at = pos_;
      ++pos_;
      if (AtEnd()) return Error(escape_at, "unterminated escape sequence");
      const char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t unit = 0;
          if (!ReadHex4(&unit)) return Error(escape_at, "\\u must be followed by 4 hex digits");
          char32_t cp = unit;
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            uint32_t low = 0;
            if (text_.substr(pos_, 2) != "\\u") {
              return Error(escape_at, "high surrogate not followed by a low surrogate");
            }
            pos_ += 2;
            if (!ReadHex4(&low)) return Error(escape_at, "\\u must be followed by 4 hex digits");
            if (low < 0xDC00 || low > 0xDFFF) {
              return Error(escape_at, "high surrogate not followed by a low surrogate");
            }
            cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
          } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
            return Error(escape_at, "low surrogate without a high surrogate");
          } else if (unit == 0) {
            return Error(escape_at, "\\u0000 is not supported (PostgreSQL text cannot hold it)");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error(escape_at, "invalid escape sequence");
      }
    }
  }

  // Parses a number and writes PostgreSQL's numeric text for it: the exact decimal value with
  // max(0, fraction digits - exponent) digits after the point.
  absl::Status ParseNumber(std::string* out) {
    const size_t start = pos_;
    bool negative = false;
    if (Peek() == '-') {
      negative = true;
      ++pos_;
    }
    const auto digits_from = [&](size_t from) {
      size_t p = from;
      while (p < text_.size() && text_[p] >= '0' && text_[p] <= '9') ++p;
      return p;
    };
    const size_t int_begin = pos_;
    const size_t int_end = digits_from(int_begin);
    if (int_end == int_begin) return Error(start, "invalid number");
    if (text_[int_begin] == '0' && int_end - int_begin > 1) {
      return Error(start, "invalid number: leading zero");
    }
    pos_ = int_end;
    absl::string_view frac;
    if (!AtEnd() && Peek() == '.') {
      const size_t frac_end = digits_from(pos_ + 1);
      if (frac_end == pos_ + 1) return Error(start, "invalid number: no digits after '.'");
      frac = text_.substr(pos_ + 1, frac_end - pos_ - 1);
      pos_ = frac_end;
    }
    int64_t exponent = 0;
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      bool exp_negative = false;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) {
        exp_negative = Peek() == '-';
        ++pos_;
      }
      const size_t exp_end = digits_from(pos_);
      if (exp_end == pos_) return Error(start, "invalid number: no digits in exponent");
      for (size_t p = pos_; p < exp_end; ++p) {
        // Saturate: anything this large is out of range anyway.
        if (exponent < kMaxExponentMagnitude) exponent = exponent * 10 + (text_[p] - '0');
      }
      if (exp_negative) exponent = -exponent;
      pos_ = exp_end;
    }
    if (!AtEnd() && (absl::ascii_isalnum(static_cast<unsigned char>(Peek())) || Peek() == '.')) {
      return Error(pos_, "invalid number");
    }

    // All significant digits, and the power of ten of the last one.
    std::string digits(text_.substr(int_begin, int_end - int_begin));
    absl::StrAppend(&digits, frac);
    if (exponent >= kMaxExponentMagnitude || exponent <= -kMaxExponentMagnitude) {
      return Error(start, "number out of range");
    }
    const int64_t frac_digits = static_cast<int64_t>(frac.size());
    const int64_t scale = std::max<int64_t>(0, frac_digits - exponent);
    if (scale > kMaxFractionDigits) return Error(start, "number out of range");
    const size_t first_nonzero = digits.find_first_not_of('0');
    const bool zero = first_nonzero == std::string::npos;
    // Value = digits * 10^(exponent - frac_digits).
    const int64_t shift = exponent - frac_digits;
    std::string integer_part;
    std::string fraction_part;
    if (zero) {
      integer_part = "0";
      fraction_part.assign(static_cast<size_t>(scale), '0');
    } else {
      std::string significant = digits.substr(first_nonzero);
      const int64_t sig = static_cast<int64_t>(significant.size());
      const int64_t int_digits = sig + shift;  // digits before the point (may be <= 0)
      if (int_digits > kMaxIntegerDigits) return Error(start, "number out of range");
      if (int_digits <= 0) {
        integer_part = "0";
        fraction_part.assign(static_cast<size_t>(-int_digits), '0');
        fraction_part.append(significant);
      } else if (int_digits >= sig) {
        integer_part = significant;
        integer_part.append(static_cast<size_t>(int_digits - sig), '0');
      } else {
        integer_part = significant.substr(0, static_cast<size_t>(int_digits));
        fraction_part = significant.substr(static_cast<size_t>(int_digits));
      }
      // Pad (or, never needed, trim) to exactly `scale` fraction digits.
      if (static_cast<int64_t>(fraction_part.size()) < scale) {
        fraction_part.append(static_cast<size_t>(scale) - fraction_part.size(), '0');
      }
    }
    out->clear();
    if (negative && !zero) out->push_back('-');
    out->append(integer_part);
    if (!fraction_part.empty()) {
      out->push_back('.');
      out->append(fraction_part);
    }
    return absl::OkStatus();
  }

  absl::string_view text_;
  const JsonParseOptions& options_;
  size_t pos_ = 0;
  // Reused buffers of the canonical path.
  std::vector<StagedMember> members_;
  std::string staged_;
  std::string decoded_;
  std::string number_;
};

}  // namespace

const JsonValue* JsonValue::Find(absl::string_view key) const {
  if (type != Type::kObject) return nullptr;
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

bool JsonValue::HasDuplicateKeys() const {
  if (type != Type::kObject) return false;
  std::vector<absl::string_view> keys;
  keys.reserve(members.size());
  for (const auto& m : members) keys.push_back(m.first);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

absl::StatusOr<JsonValue> ParseJson(absl::string_view text, const JsonParseOptions& options) {
  return Parser(text, options).ParseDocument();
}

void AppendJsonString(absl::string_view utf8, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < utf8.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    absl::StrAppend(out, utf8.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  absl::StrAppend(out, utf8.substr(run));
  out->push_back('"');
}

void AppendCanonicalJson(const JsonValue& value, std::string* out) {
  switch (value.type) {
    case JsonValue::Type::kNull:
      out->append("null");
      return;
    case JsonValue::Type::kBool:
      out->append(value.boolean ? "true" : "false");
      return;
    case JsonValue::Type::kNumber:
      out->append(value.scalar);
      return;
    case JsonValue::Type::kString:
      AppendJsonString(value.scalar, out);
      return;
    case JsonValue::Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const JsonValue& e : value.elements) {
        if (!first) out->append(", ");
        first = false;
        AppendCanonicalJson(e, out);
      }
      out->push_back(']');
      return;
    }
    case JsonValue::Type::kObject: {
      // Stable sort keeps duplicates in input order; the last of each run wins.
      std::vector<const std::pair<std::string, JsonValue>*> sorted;
      sorted.reserve(value.members.size());
      for (const auto& m : value.members) sorted.push_back(&m);
      std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
        return JsonbKeyLess(a->first, b->first);
      });
      out->push_back('{');
      bool first = true;
      for (size_t i = 0; i < sorted.size(); ++i) {
        if (i + 1 < sorted.size() && sorted[i + 1]->first == sorted[i]->first) continue;
        if (!first) out->append(", ");
        first = false;
        AppendJsonString(sorted[i]->first, out);
        out->append(": ");
        AppendCanonicalJson(sorted[i]->second, out);
      }
      out->push_back('}');
      return;
    }
  }
}

std::string CanonicalJson(const JsonValue& value) {
  std::string out;
  AppendCanonicalJson(value, &out);
  return out;
}

absl::StatusOr<std::string> CanonicalizeJson(absl::string_view text,
                                             const JsonParseOptions& options) {
  std::string out;
  if (absl::Status s = CanonicalizeJsonTo(text, &out, options); !s.ok()) return s;
  return out;
}

absl::Status CanonicalizeJsonTo(absl::string_view text, std::string* out,
                                const JsonParseOptions& options) {
  out->clear();
  out->reserve(text.size() + text.size() / 8 + 16);
  return Parser(text, options).CanonicalDocument(out);
}

bool IsJsonMediaType(absl::string_view media_type) {
  absl::string_view essence = media_type.substr(0, media_type.find(';'));
  essence = absl::StripAsciiWhitespace(essence);
  if (absl::EqualsIgnoreCase(essence, "application/json") ||
      absl::EqualsIgnoreCase(essence, "text/json")) {
    return true;
  }
  const size_t slash = essence.find('/');
  return slash != absl::string_view::npos && slash > 0 &&
         absl::EndsWithIgnoreCase(essence.substr(slash + 1), "+json");
}

}  // namespace audit
