// Differential test: ParseJson/CanonicalJson against PostgreSQL's own jsonb, on random and
// mutated documents. Both must accept the same documents, and for those produce the same text.
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/utf8.h"
#include "gtest/gtest.h"
#include "services/common/copy_binary.h"
#include "services/common/pg.h"
#include "tests/fixtures/postgres_test.h"

namespace audit {
namespace {

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string Document() {
    std::string out;
    Value(0, &out);
    return out;
  }

  // A copy of `doc` with one random byte inserted, deleted or replaced.
  std::string Mutate(const std::string& doc) {
    static constexpr char kBytes[] = "{}[],:\"\\-+.0123456789eEtrufalsn \t\nu/x";
    std::string out = doc;
    // Invalid UTF-8 cannot reach PostgreSQL as text at all (json_test covers it); retry.
    do {
      out = doc;
      MutateOnce(&out, kBytes, sizeof(kBytes) - 1);
    } while (!IsValidUtf8(out));
    return out;
  }

 private:
  void MutateOnce(std::string* s, const char* bytes, size_t n_bytes) {
    std::string& out = *s;
    const size_t at = Pick(out.size() + 1);
    const char c = bytes[Pick(n_bytes)];
    switch (Pick(3)) {
      case 0:
        out.insert(out.begin() + static_cast<long>(at), c);
        break;
      case 1:
        if (at < out.size()) out.erase(at, 1);
        break;
      default:
        if (at < out.size()) out[at] = c;
    }
  }

  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  void Ws(std::string* out) {
    static constexpr const char* kWs[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    out->append(kWs[Pick(7)]);
  }

  void Value(int depth, std::string* out) {
    Ws(out);
    const size_t kind = depth >= 6 ? 2 + Pick(4) : Pick(6);
    switch (kind) {
      case 0: {
        out->push_back('{');
        const size_t n = Pick(5);
        for (size_t i = 0; i < n; ++i) {
          if (i > 0) out->push_back(',');
          Ws(out);
          // Small key space so duplicates and equal-length keys are common.
          String(Pick(4) == 0 ? 3 : 1, out);
          Ws(out);
          out->push_back(':');
          Value(depth + 1, out);
        }
        Ws(out);
        out->push_back('}');
        break;
      }
      case 1: {
        out->push_back('[');
        const size_t n = Pick(5);
        for (size_t i = 0; i < n; ++i) {
          if (i > 0) out->push_back(',');
          Value(depth + 1, out);
        }
        Ws(out);
        out->push_back(']');
        break;
      }
      case 2:
        String(6, out);
        break;
      case 3:
        Number(out);
        break;
      case 4:
        out->append(Pick(2) ? "true" : "false");
        break;
      default:
        out->append("null");
    }
    Ws(out);
  }

  void String(size_t max_len, std::string* out) {
    static constexpr const char* kPieces[] = {
        "a",       "b",       "Z",       "é",       "😀",       "\\\"",
        "\\\\",    "\\/",     "\\b",     "\\f",     "\\n",     "\\r",
        "\\t",     "\\u0041", "\\u00e9", "\\u001f", "\\u007f", "\\ud83d\\ude00",
        "\\uD800", "\\udc00", "\\u0000", "€",       "\x7f",    "~",
        " "};
    out->push_back('"');
    const size_t n = Pick(max_len + 1);
    for (size_t i = 0; i < n; ++i) {
      // Rare invalid pieces (lone surrogates, \u0000) exercise rejection agreement.
      size_t p = Pick(std::size(kPieces));
      if ((p == 18 || p == 19 || p == 20) && Pick(8) != 0) p = 0;
      out->append(kPieces[p]);
    }
    out->push_back('"');
  }

  void Number(std::string* out) {
    if (Pick(2)) out->push_back('-');
    if (Pick(4) == 0) {
      out->push_back('0');
    } else {
      out->push_back(static_cast<char>('1' + Pick(9)));
      for (size_t i = Pick(25); i > 0; --i) out->push_back(static_cast<char>('0' + Pick(10)));
    }
    if (Pick(2)) {
      out->push_back('.');
      for (size_t i = 1 + Pick(8); i > 0; --i) out->push_back(static_cast<char>('0' + Pick(10)));
    }
    if (Pick(3) == 0) {
      out->push_back(Pick(2) ? 'e' : 'E');
      if (Pick(2)) out->push_back(Pick(2) ? '+' : '-');
      static constexpr int kExps[] = {0, 1, 2, 5, 20, 300, 16383, 16384, 16390, 131050, 131072};
      absl::StrAppend(out, kExps[Pick(std::size(kExps))] + (Pick(3) == 0 ? Pick(5) : 0));
    }
  }

  std::mt19937 rng_;
};

class JsonPgTest : public testing::PostgresTest</*kMigrated=*/false> {
 protected:
  // PostgreSQL's jsonb text for each document, nullopt where it refuses the document.
  std::vector<std::optional<std::string>> PostgresCanonical(const std::vector<std::string>& docs) {
    pg::ConnPtr c = Connect();
    PGconn* conn = c.get();
    EXPECT_TRUE(pg::Exec(conn, R"sql(
      CREATE TEMP TABLE docs (id int, doc text);
      CREATE FUNCTION pg_temp.try_jsonb(t text) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN RETURN t::jsonb::text; EXCEPTION WHEN others THEN RETURN NULL; END $$;)sql")
                    .ok());
    pg::BinaryCopyWriter w;
    for (size_t i = 0; i < docs.size(); ++i) {
      w.StartRow(2);
      w.Int32(static_cast<int32_t>(i));
      w.Text(docs[i]);
    }
    absl::Status copied = pg::CopyIn(conn, "COPY docs FROM STDIN (FORMAT binary)", w.Finish());
    EXPECT_TRUE(copied.ok()) << copied;
    absl::StatusOr<pg::ResultPtr> r =
        pg::Exec(conn, "SELECT pg_temp.try_jsonb(doc) FROM docs ORDER BY id");
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::optional<std::string>> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      if (pg::IsNull(r->get(), i, 0)) {
        out.push_back(std::nullopt);
      } else {
        out.emplace_back(pg::Value(r->get(), i, 0));
      }
    }
    return out;
  }
};

TEST_F(JsonPgTest, AgreesWithPostgresOnRandomAndMutatedDocuments) {
  Generator gen(20261126);
  std::vector<std::string> docs = {"1e-16383",
                                   "1e-16384",
                                   "0e-16384",
                                   "1e131071",
                                   "1e131072",
                                   "10e131071",
                                   "0e131072",
                                   "0e200000",
                                   "0.00e2",
                                   "-0",
                                   "-0.0",
                                   "1E+2",
                                   "[]",
                                   "{}",
                                   "\"\\u0000\"",
                                   "\"\\ud83d\"",
                                   R"({"a":1,"a":{"b":2},"aa":3,"b":4})",
                                   "  true  ",
                                   "1e2147483647",
                                   "0e2147483648",
                                   "0e-2147483648",
                                   "1.5e-0",
                                   "[1,2,]",
                                   "01"};
  while (docs.size() < 6000) {
    std::string doc = gen.Document();
    docs.push_back(doc);
    docs.push_back(gen.Mutate(doc));
  }
  const std::vector<std::optional<std::string>> expected = PostgresCanonical(docs);
  ASSERT_EQ(expected.size(), docs.size());
  int accepted = 0, rejected = 0, failures = 0;
  for (size_t i = 0; i < docs.size() && failures < 20; ++i) {
    absl::StatusOr<std::string> ours = CanonicalizeJson(docs[i]);
    if (!expected[i].has_value()) {
      ++rejected;
      if (ours.ok()) {
        ++failures;
        ADD_FAILURE() << "PostgreSQL rejects but we accept: " << docs[i];
      }
      continue;
    }
    ++accepted;
    if (!ours.ok()) {
      ++failures;
      ADD_FAILURE() << "PostgreSQL accepts but we reject (" << ours.status() << "): " << docs[i];
    } else if (*ours != *expected[i]) {
      ++failures;
      ADD_FAILURE() << "different text for " << docs[i] << "\n ours: " << *ours
                    << "\n   pg: " << *expected[i];
    }
  }
  // The corpus must exercise both sides.
  EXPECT_GT(accepted, 2000);
  EXPECT_GT(rejected, 500);
}

}  // namespace
}  // namespace audit
