#include "audit/json.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace audit {
namespace {

std::string Canon(absl::string_view text) {
  absl::StatusOr<std::string> c = CanonicalizeJson(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status();
  return c.ok() ? *c : "";
}

void ExpectRejected(absl::string_view text, absl::string_view fragment) {
  absl::StatusOr<JsonValue> v = ParseJson(text);
  ASSERT_FALSE(v.ok()) << "accepted: " << text;
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find(fragment), absl::string_view::npos)
      << "message '" << v.status().message() << "' lacks '" << fragment << "'";
  // The tree-free canonical path refuses it with the same message.
  absl::StatusOr<std::string> c = CanonicalizeJson(text);
  ASSERT_FALSE(c.ok()) << "canonicalized: " << text;
  EXPECT_EQ(c.status(), v.status());
}

// Expected texts are what PostgreSQL 15 prints for `'<input>'::jsonb::text` (checked by
// json_pg_test against a live server).
TEST(JsonTest, ObjectsSortKeysByLengthThenBytesAndKeepLastDuplicate) {
  EXPECT_EQ(Canon(R"({"b":1,"a":2,"aa":[1,2,{}],"a":3})"), R"({"a": 3, "b": 1, "aa": [1, 2, {}]})");
  EXPECT_EQ(Canon(R"({"\u00e9":1,"z":2,"é":3})"), R"({"z": 2, "é": 3})");
  EXPECT_EQ(Canon("{}"), "{}");
  EXPECT_EQ(Canon("[]"), "[]");
  EXPECT_EQ(Canon(" \t\r\n[ true , false , null ] "), "[true, false, null]");
}

TEST(JsonTest, NumbersTakePostgresNumericForm) {
  EXPECT_EQ(Canon("[1e2, 1.0e-5, -0, -0.00, 0.10e1, 1E+2, 12.30, 1e-0, -1.5e3]"),
            "[100, 0.000010, 0, 0.00, 1.0, 100, 12.30, 1, -1500]");
  EXPECT_EQ(Canon("123456789012345678901234567890"), "123456789012345678901234567890");
  EXPECT_EQ(Canon("0.0010"), "0.0010");
  EXPECT_EQ(Canon("0e200000"), "0");
  EXPECT_EQ(Canon("0.00e2"), "0");
  EXPECT_EQ(Canon("-12.5e-1"), "-1.25");
  EXPECT_EQ(Canon("1e-16383").size(), 16385u);
  EXPECT_EQ(Canon("1e131071").size(), 131072u);
}

TEST(JsonTest, NumbersOutsideNumericRangeAreRejected) {
  ExpectRejected("1e-16384", "number out of range");
  ExpectRejected("0e-16384", "number out of range");
  ExpectRejected("0.1e-16383", "number out of range");
  ExpectRejected("1e131072", "number out of range");
  ExpectRejected("10e131071", "number out of range");
  ExpectRejected("1e99999999999999999999", "number out of range");
  ExpectRejected("0e1073741823", "number out of range");
  EXPECT_EQ(Canon("0e1073741822"), "0");
}

TEST(JsonTest, StringsAreReescapedLikeJsonb) {
  EXPECT_EQ(Canon(R"("\u001f\u007f\u00e9\/\ud83d\ude00")"),
            "\"\\u001f\x7f\xc3\xa9/\xf0\x9f\x98\x80\"");
  EXPECT_EQ(Canon(R"("\"\\\b\f\n\r\t")"), R"("\"\\\b\f\n\r\t")");
  EXPECT_EQ(Canon(R"("\u0022\u005c")"), R"("\"\\")");
  EXPECT_EQ(Canon(R"("\uDBFF\uDFFF")"), "\"\xf4\x8f\xbf\xbf\"");
}

TEST(JsonTest, RejectsWhatJsonbRejects) {
  ExpectRejected("", "expected a value");
  ExpectRejected("{", "expected an object key");
  ExpectRejected("[1,]", "expected a value");
  ExpectRejected("[1 2]", "expected ',' or ']'");
  ExpectRejected(R"({"a" 1})", "expected ':'");
  ExpectRejected(R"({"a":1,})", "expected an object key");
  ExpectRejected("00", "leading zero");
  ExpectRejected(".5", "expected a value");
  ExpectRejected("1.", "no digits after '.'");
  ExpectRejected("1e", "no digits in exponent");
  ExpectRejected("+1", "expected a value");
  ExpectRejected("0x10", "invalid number");
  ExpectRejected("tru", "invalid literal");
  ExpectRejected("truex", "invalid literal");
  ExpectRejected("NaN", "expected a value");
  ExpectRejected("\"a\tb\"", "unescaped control character");
  ExpectRejected(R"("\u0000")", "\\u0000 is not supported");
  ExpectRejected(R"("\ud83d")", "high surrogate not followed");
  ExpectRejected(R"("\ude00")", "low surrogate without");
  ExpectRejected(R"("\u12")", "4 hex digits");
  ExpectRejected(R"("\x")", "invalid escape");
  ExpectRejected("\"abc", "unterminated string");
  ExpectRejected("\"\xc3\"", "invalid UTF-8");
  ExpectRejected("1 2", "unexpected data after");
  ExpectRejected("\f1", "expected a value");  // form feed is not JSON whitespace
}

TEST(JsonTest, DepthIsLimited) {
  std::string deep(129, '[');
  deep.append(129, ']');
  ExpectRejected(deep, "nesting too deep");
  std::string ok(128, '[');
  ok.append(128, ']');
  EXPECT_TRUE(ParseJson(ok).ok());
}

TEST(JsonTest, FindReturnsLastDuplicateAndDetectsDuplicates) {
  absl::StatusOr<JsonValue> v = ParseJson(R"({"a":1,"b":"x","a":2})");
  ASSERT_TRUE(v.ok());
  ASSERT_NE(v->Find("a"), nullptr);
  EXPECT_EQ(v->Find("a")->scalar, "2");
  EXPECT_EQ(v->Find("b")->scalar, "x");
  EXPECT_EQ(v->Find("c"), nullptr);
  EXPECT_TRUE(v->HasDuplicateKeys());
  EXPECT_FALSE(ParseJson(R"({"a":1,"b":2})")->HasDuplicateKeys());
}

TEST(JsonTest, CanonicalFormIsAFixedPoint) {
  const std::string once = Canon(R"({"z":[1.50,{"y":null,"x":"\n"}],"a":-0.0})");
  EXPECT_EQ(Canon(once), once);
}

// CanonicalizeJson does not build a tree; it must agree with CanonicalJson(ParseJson()) on
// every input, accepted or not (the JSON fuzzer checks the same on generated inputs).
TEST(JsonTest, CanonicalizeJsonAgreesWithTheParsedTree) {
  const std::string deep_ok = std::string(128, '[') + std::string(128, ']');
  const std::string deep_bad = std::string(129, '{');
  const std::vector<std::string> docs = {
      R"({"b": {"y": 1, "x": [ {"q": 1, "p": 2, "q": 3} ], "y": 2}, "a": "s", "b": null})",
      R"({"k\"ey": "v\u00e9\n", "k": {"": {}}, "": []})",
      R"([{"a": 1}, {"b": 2, "a": {"d": 1, "c": [1e3, -0.0, 2.50]}}, "x\ty", true])",
      R"({"\u0061": 1, "a": 2, "aa": {"b": 1, "a": 1}, "\u00e9": "\ud83d\ude00"})",
      R"(  {"z":1,"y":{"x":{"w":{"v":{}}}}}  )",
      "\"plain\"",
      "\"esc\\\\aped\"",
      "-12.5e-3",
      "null",
      "[]",
      "{}",
      deep_ok,
      // Refused, at various depths and places.
      R"({"a": {"b": [1, 2,]}})",
      R"({"a": {"b" 1}})",
      R"({"a": "x)",
      R"({"a": "\q"})",
      R"([{"a": 1}, {"b": tru}])",
      R"({"a": 01})",
      R"({"a": "\ud800"})",
      "\"\x01\"",
      R"({"a": 1} x)",
      "[1, 2",
      "{\"a\": \"\xff\"}",
      deep_bad,
      "",
      "   ",
  };
  for (const std::string& doc : docs) {
    absl::StatusOr<JsonValue> tree = ParseJson(doc);
    absl::StatusOr<std::string> direct = CanonicalizeJson(doc);
    ASSERT_EQ(tree.ok(), direct.ok()) << doc;
    if (tree.ok()) {
      EXPECT_EQ(*direct, CanonicalJson(*tree)) << doc;
    } else {
      EXPECT_EQ(direct.status(), tree.status()) << doc;
    }
  }
}

TEST(JsonTest, JsonMediaTypes) {
  EXPECT_TRUE(IsJsonMediaType("application/json"));
  EXPECT_TRUE(IsJsonMediaType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(IsJsonMediaType("text/json"));
  EXPECT_TRUE(IsJsonMediaType("application/vnd.acme.order+json"));
  EXPECT_FALSE(IsJsonMediaType("application/xml"));
  EXPECT_FALSE(IsJsonMediaType("text/plain"));
  EXPECT_FALSE(IsJsonMediaType("+json"));
  EXPECT_FALSE(IsJsonMediaType(""));
}

}  // namespace
}  // namespace audit
