#include "services/ingestor/pg_event_store.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/envelope.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"
#include "services/common/event_rows.h"
#include "services/common/pg.h"
#include "tests/fixtures/postgres_test.h"

namespace audit::ingestor {
namespace {

using ::audit::testing::MakeValidEvent;

// Owns events and records so that an AppendBatch can point into them.
class BatchBuilder {
 public:
  EventEntry& AddEvent(v1::Event e, int64_t offset, absl::string_view topic = "orders.events") {
    EXPECT_TRUE(NormalizeEvent(&e).ok());
    events_.push_back(std::move(e));
    KafkaRecord& r = NewRecord(topic, offset);
    batch_.events.push_back({&r, &events_.back(), ContentHash(events_.back())});
    return batch_.events.back();
  }
  DeadLetterEntry& AddDeadLetter(int64_t offset, std::string value) {
    values_.push_back(std::move(value));
    KafkaRecord& r = NewRecord("orders.events", offset);
    r.value = values_.back();
    r.key = "order-9";
    r.headers = {{"content-type", "application/protobuf"}, {"\xff-bin", std::nullopt}};
    r.timestamp_ms = 1700000000123;
    batch_.dead_letters.push_back(
        {&r, ErrorClass::kUndecodable, "not a protobuf", "/services/orders", "evt-x"});
    return batch_.dead_letters.back();
  }
  const AppendBatch& batch() const { return batch_; }

 private:
  KafkaRecord& NewRecord(absl::string_view topic, int64_t offset) {
    topics_.emplace_back(topic);
    records_.emplace_back();
    KafkaRecord& r = records_.back();
    r.topic = topics_.back();
    r.partition = 1;
    r.offset = offset;
    return r;
  }
  std::deque<v1::Event> events_;
  std::deque<KafkaRecord> records_;
  std::deque<std::string> topics_, values_;
  AppendBatch batch_;
};

class PgEventStoreTest : public testing::PostgresTest<> {
 protected:
  std::unique_ptr<PgEventStore> Store() {
    PgEventStore::Options o;
    o.url = server_->Url(db_, "ingestor");
    return std::make_unique<PgEventStore>(o);
  }

  // Recomputes every event's leaf and chain hash from its columns and every stored Merkle
  // subtree from those leaves; the store must hold exactly these (no node missing, none extra).
  void ExpectHashesAndNodesMatchRecomputation() {
    pg::ConnPtr c = Connect("reader");
    ASSERT_NE(c, nullptr);
    const std::string sql =
        absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events ORDER BY position");
    absl::StatusOr<pg::ResultPtr> r = pg::ExecBinary(c.get(), sql.c_str());
    ASSERT_TRUE(r.ok()) << r.status();
    Sha256Digest chain = kGenesisChainHash;
    merkle::Frontier frontier;
    std::vector<merkle::Frontier::Node> expected_nodes;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(r->get(), i);
      ASSERT_TRUE(e.ok()) << e.status();
      ASSERT_EQ(e->position(), i + 1);
      const Sha256Digest leaf = RecomputeLeafHash(*e);
      chain = ChainHash(chain, leaf);
      ASSERT_EQ(e->leaf_hash(), DigestBytes(leaf)) << "position " << e->position();
      ASSERT_EQ(e->chain_hash(), DigestBytes(chain)) << "position " << e->position();
      frontier.Append(leaf, 8, &expected_nodes);
    }
    std::vector<std::string> expected;
    for (const auto& n : expected_nodes) {
      expected.push_back(absl::StrCat(n.level, "/", n.index, "/", HexDigest(n.hash)));
    }
    std::sort(expected.begin(), expected.end());
    std::vector<std::string> stored = Query(
        "SELECT level || '/' || node_index || '/' || encode(hash, 'hex') FROM audit.merkle_nodes");
    std::sort(stored.begin(), stored.end());
    EXPECT_EQ(stored, expected);
    EXPECT_EQ(Query("SELECT encode(chain_hash, 'hex') FROM audit.append_head")[0],
              HexDigest(chain));
  }
};

TEST_F(PgEventStoreTest, StoresEveryFieldAndAssignsPositions) {
  BatchBuilder b;
  v1::Event full = MakeValidEvent("evt-1");
  full.set_causation_id("evt-0");
  full.set_data_schema("https://schemas.acme.com/order.json");
  full.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  full.set_sequence(3);
  (*full.mutable_extensions())["region"] = "eu";
  b.AddEvent(full, 10);
  v1::Event binary = MakeValidEvent("evt-2");
  binary.set_data_content_type("application/octet-stream");
  binary.set_binary_data(std::string("\0\xff", 2));
  b.AddEvent(binary, 11);
  absl::StatusOr<AppendResult> r = Store()->Append(b.batch());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->appended, 2);
  EXPECT_EQ(r->first_position, 1);
  EXPECT_EQ(r->last_position, 2);

  const std::vector<std::string> rows = Query(
      "SET TIME ZONE 'UTC'; SELECT concat_ws('|', position, event_id, source, type, spec_version,"
      " subject, occurred_at, data_content_type, data_schema, data::text, encode(data_bytes,"
      " 'hex'), correlation_id, causation_id, actor, tenant, traceparent, sequence,"
      " extensions::text, kafka_topic, kafka_partition, kafka_offset,"
      " encode(content_hash, 'hex')) FROM audit.events ORDER BY position");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0],
            absl::StrCat("1|evt-1|/services/orders|com.acme.order.created|1.0|order-1|"
                         "2024-02-29 12:34:56.789+00|application/json|"
                         "https://schemas.acme.com/order.json|"
                         R"({"total": 12.50, "currency": "EUR"}|corr-1|evt-0|user:42|acme|)"
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01|3|"
                         R"({"region": "eu"}|orders.events|1|10|)",
                         HexDigest(b.batch().events[0].content_hash)));
  EXPECT_EQ(rows[1].substr(0, 8), "2|evt-2|");
  EXPECT_NE(rows[1].find("|application/octet-stream|00ff|corr-1|"), std::string::npos) << rows[1];
  // recorded_at is the same for the whole batch and equals the head's.
  EXPECT_EQ(Query("SELECT count(DISTINCT recorded_at) FROM audit.events")[0], "1");
  EXPECT_EQ(Query("SELECT (SELECT max(recorded_at) FROM audit.events) = recorded_at "
                  "FROM audit.append_head")[0],
            "t");
}

TEST_F(PgEventStoreTest, IdenticalRedeliveriesAreAbsorbed) {
  auto store = Store();
  BatchBuilder first;
  first.AddEvent(MakeValidEvent("a"), 1);
  first.AddEvent(MakeValidEvent("a"), 2);  // same event twice in one batch
  first.AddEvent(MakeValidEvent("b"), 3);
  absl::StatusOr<AppendResult> r1 = store->Append(first.batch());
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->appended, 2);
  EXPECT_EQ(r1->duplicates, 1);
  absl::StatusOr<AppendResult> r2 = store->Append(first.batch());  // the whole batch again
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->appended, 0);
  EXPECT_EQ(r2->duplicates, 3);
  EXPECT_EQ(Query("SELECT count(*) FROM audit.events")[0], "2");
  EXPECT_EQ(Query("SELECT count(*) FROM audit.dead_letters")[0], "0");
  // The first batch went in without a lookup; the second met the unique index and was redone
  // with one, as the next batches are (a run of redeliveries).
  EXPECT_EQ(store->optimistic_misses(), 1);
  BatchBuilder mixed;
  mixed.AddEvent(MakeValidEvent("b"), 3);
  mixed.AddEvent(MakeValidEvent("c"), 4);
  absl::StatusOr<AppendResult> r3 = store->Append(mixed.batch());
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->appended, 1);
  EXPECT_EQ(r3->duplicates, 1);
  EXPECT_EQ(store->optimistic_misses(), 1) << "looked up directly, no second miss";
}

TEST_F(PgEventStoreTest, AfterARunOfLookupsAppendsGoOptimisticAgainAndStillCatchConflicts) {
  auto store = Store();
  BatchBuilder original;
  original.AddEvent(MakeValidEvent("x"), 1);
  ASSERT_TRUE(store->Append(original.batch()).ok());
  ASSERT_TRUE(store->Append(original.batch()).ok());  // a miss: lookups for the next batches
  for (int i = 0; i < 20; ++i) {
    BatchBuilder b;
    b.AddEvent(MakeValidEvent(absl::StrCat("fresh-", i)), 10 + i);
    ASSERT_TRUE(store->Append(b.batch()).ok());
  }
  EXPECT_EQ(store->optimistic_misses(), 1);
  // Optimistic again: a conflicting redelivery is still caught, by the index, and
  // dead-lettered with the stored position.
  BatchBuilder conflict;
  v1::Event changed = MakeValidEvent("x");
  changed.set_subject("order-other");
  conflict.AddEvent(changed, 99);
  absl::StatusOr<AppendResult> r = store->Append(conflict.batch());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->conflicts, 1);
  EXPECT_EQ(store->optimistic_misses(), 2);
  EXPECT_EQ(Query("SELECT conflicting_position FROM audit.dead_letters")[0], "1");
}

TEST_F(PgEventStoreTest, SameIdDifferentContentIsDeadLetteredAsConflictOnce) {
  auto store = Store();
  BatchBuilder first;
  first.AddEvent(MakeValidEvent("a"), 1);
  ASSERT_TRUE(store->Append(first.batch()).ok());
  BatchBuilder second;
  v1::Event changed = MakeValidEvent("a");
  changed.set_text_data(R"({"total": 99})");
  second.AddEvent(changed, 2);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second time is a redelivery
    absl::StatusOr<AppendResult> r = store->Append(second.batch());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->appended, 0);
    EXPECT_EQ(r->conflicts, 1);
    EXPECT_EQ(r->dead_letters_written, attempt == 0 ? 1 : 0);
    EXPECT_EQ(r->dead_letters_existing, attempt == 0 ? 0 : 1);
  }
  EXPECT_EQ(Query("SELECT count(*) FROM audit.events")[0], "1");
  const std::vector<std::string> dl = Query(
      "SELECT concat_ws('|', error_class, conflicting_position, event_source, event_id,"
      " kafka_offset, reason LIKE '%already stored at position 1%') FROM "
      "audit.dead_letters");
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0], "conflict|1|/services/orders|a|2|t");
}

// After its first commit a store appends in one query, except what needs more than the
// unique index: a conflict within the batch, dead letters, a head another writer moved.
TEST_F(PgEventStoreTest, OptimisticAppendsAreOneQueryUnlessTheBatchNeedsMore) {
  auto store = Store();
  auto other = Store();
  const auto append = [](PgEventStore& s, BatchBuilder& b) {
    absl::StatusOr<AppendResult> r = s.Append(b.batch());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : AppendResult{};
  };
  BatchBuilder first, second, conflicting, by_other, after_other, with_dead_letter;
  first.AddEvent(MakeValidEvent("e1"), 1);
  append(*store, first);
  EXPECT_EQ(store->scripted_appends(), 0);  // no frontier yet: it is built by the first append
  second.AddEvent(MakeValidEvent("e2"), 2);
  second.AddEvent(MakeValidEvent("e2"), 3);  // an identical repetition within the batch
  AppendResult r = append(*store, second);
  EXPECT_EQ(store->scripted_appends(), 1);
  EXPECT_EQ(r.appended, 1);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(r.first_position, 2);
  v1::Event changed = MakeValidEvent("e3");
  changed.set_text_data(R"({"total": 1})");
  conflicting.AddEvent(MakeValidEvent("e3"), 4);
  conflicting.AddEvent(changed, 5);
  r = append(*store, conflicting);
  EXPECT_EQ(store->scripted_appends(), 1);
  EXPECT_EQ(r.appended, 1);
  EXPECT_EQ(r.conflicts, 1);
  by_other.AddEvent(MakeValidEvent("e4"), 6);
  append(*other, by_other);
  after_other.AddEvent(MakeValidEvent("e5"), 7);
  r = append(*store, after_other);  // declined (the head moved), then appended as before
  EXPECT_EQ(store->scripted_appends(), 1);
  EXPECT_EQ(r.first_position, 5);
  with_dead_letter.AddEvent(MakeValidEvent("e6"), 8);
  with_dead_letter.AddDeadLetter(9, "garbage");
  append(*store, with_dead_letter);
  EXPECT_EQ(store->scripted_appends(), 1);
  BatchBuilder last;
  last.AddEvent(MakeValidEvent("e7"), 10);
  r = append(*store, last);
  EXPECT_EQ(store->scripted_appends(), 2);
  EXPECT_EQ(r.first_position, 7);
  EXPECT_EQ(Query("SELECT count(*) FROM audit.events")[0], "7");
  ExpectHashesAndNodesMatchRecomputation();
}

TEST_F(PgEventStoreTest, DeadLettersKeepRawBytesAndAreWrittenOnce) {
  auto store = Store();
  BatchBuilder b;
  b.AddDeadLetter(7, std::string("\x0a\xff\x00raw", 6));
  absl::StatusOr<AppendResult> r = store->Append(b.batch());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dead_letters_written, 1);
  r = store->Append(b.batch());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dead_letters_written, 0);
  EXPECT_EQ(r->dead_letters_existing, 1);
  const std::vector<std::string> row = Query(
      "SET TIME ZONE 'UTC'; SELECT concat_ws('|', kafka_topic, kafka_partition, kafka_offset,"
      " kafka_timestamp, encode(raw_key, 'escape'), raw_header_keys::text,"
      " raw_header_values::text, encode(raw_value, 'hex'), error_class, reason, event_source,"
      " event_id) FROM audit.dead_letters");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(
      row[0],
      "orders.events|1|7|2023-11-14 22:13:20.123+00|order-9|"
      R"({"\\x636f6e74656e742d74797065","\\xff2d62696e"}|{"\\x6170706c69636174696f6e2f70726f746f627566",NULL}|)"
      "0aff00726177|undecodable|not a protobuf|/services/orders|evt-x");
}

TEST_F(PgEventStoreTest, RefusedContentIsInvalidArgumentAndLeavesNothing) {
  auto store = Store();
  BatchBuilder b;
  b.AddEvent(MakeValidEvent("ok"), 1);
  EventEntry& bad = b.AddEvent(MakeValidEvent("bad"), 2);
  // Bypass normalisation: JSON PostgreSQL refuses (a lone surrogate escape).
  const_cast<v1::Event*>(bad.event)->set_text_data(R"({"x": "\ud800"})");
  absl::StatusOr<AppendResult> r = store->Append(b.batch());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(Query("SELECT count(*) FROM audit.events")[0], "0");
  // The store recovers for the next batch.
  BatchBuilder good;
  good.AddEvent(MakeValidEvent("ok"), 1);
  ASSERT_TRUE(store->Append(good.batch()).ok());
  EXPECT_EQ(Query("SELECT position FROM audit.events")[0], "1");
}

TEST_F(PgEventStoreTest, PingChecksTheSchema) {
  EXPECT_TRUE(Store()->Ping().ok());
  ASSERT_TRUE(server_->Query("postgres", "CREATE DATABASE unmigrated").ok());
  PgEventStore::Options o;
  o.url = server_->Url("unmigrated", "ingestor");
  EXPECT_EQ(PgEventStore(o).Ping().code(), absl::StatusCode::kFailedPrecondition);
  o.url = "postgresql:///nowhere?host=/nonexistent";
  EXPECT_EQ(PgEventStore(o).Ping().code(), absl::StatusCode::kUnavailable);
}

// The sequence-gap problem: with several writers committing concurrently, a follower reading
// "position > last seen" must never skip a position that commits later.
TEST_F(PgEventStoreTest, ConcurrentWritersNeverLetAFollowerSkipAPosition) {
  constexpr int kWriters = 4;
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 25;
  constexpr int64_t kTotal = int64_t{kWriters} * kBatches * kPerBatch;
  std::atomic<bool> failed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto store = Store();
      for (int b = 0; b < kBatches; ++b) {
        BatchBuilder batch;
        for (int i = 0; i < kPerBatch; ++i) {
          batch.AddEvent(MakeValidEvent(absl::StrCat("w", w, "-", b, "-", i)), b * kPerBatch + i,
                         absl::StrCat("t", w, ".events"));
        }
        absl::StatusOr<AppendResult> r = store->Append(batch.batch());
        if (!r.ok() || r->appended != kPerBatch) failed = true;
      }
    });
  }
  // The follower: reads everything after the last position it saw, as a replay would.
  pg::ConnPtr reader = Connect("reader");
  ASSERT_NE(reader, nullptr);
  int64_t last = 0;
  int64_t gaps = 0;
  while (last < kTotal && !failed) {
    const std::string sql = absl::StrCat("SELECT position FROM audit.events WHERE position > ",
                                         last, " ORDER BY position");
    absl::StatusOr<pg::ResultPtr> r = pg::Exec(reader.get(), sql.c_str());
    ASSERT_TRUE(r.ok()) << r.status();
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      const int64_t p = pg::Int64Value(r->get(), i, 0);
      if (p != last + 1) ++gaps;
      last = p;
    }
  }
  for (auto& t : writers) t.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(gaps, 0);
  EXPECT_EQ(last, kTotal);
  EXPECT_EQ(Query("SELECT count(*) = max(position) AND min(position) = 1 FROM audit.events")[0],
            "t");
  // recorded_at never decreases along positions.
  EXPECT_EQ(Query("SELECT count(*) FROM (SELECT recorded_at < lag(recorded_at) OVER (ORDER BY "
                  "position) AS back FROM audit.events) x WHERE back")[0],
            "0");
  // The writers' cached Merkle frontiers were invalidated by each other's appends.
  ExpectHashesAndNodesMatchRecomputation();
}

TEST_F(PgEventStoreTest, HashesAndMerkleNodesFollowTheLogAcrossWritersAndBatchSizes) {
  auto a = Store();
  auto b = Store();
  int64_t offset = 0;
  // Batch sizes that straddle tile (256) and node boundaries; two writers take turns, so each
  // must rebuild its frontier from the stored nodes; a duplicate-only batch appends nothing.
  for (int size : {1, 254, 1, 300, 1000, 255, 1, 1, 236, 512, 3}) {
    BatchBuilder batch;
    for (int i = 0; i < size; ++i) {
      batch.AddEvent(MakeValidEvent(absl::StrCat("e", offset)), offset);
      ++offset;
    }
    absl::StatusOr<AppendResult> r = (offset % 2 ? a : b)->Append(batch.batch());
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->appended, size);
  }
  BatchBuilder again;
  again.AddEvent(MakeValidEvent("e7"), 7);
  ASSERT_TRUE(a->Append(again.batch()).ok());
  ASSERT_EQ(Count("audit.events"), offset);
  ExpectHashesAndNodesMatchRecomputation();
  EXPECT_EQ(Query("SELECT max(level) FROM audit.merkle_nodes")[0], "11");
}

TEST_F(PgEventStoreTest, ABrokenChainIsRefusedByTheDatabase) {
  // A writer that ignores begin_append()'s chain hash cannot commit.
  pg::ConnPtr c = Connect("ingestor");
  ASSERT_NE(c, nullptr);
  auto store = Store();
  BatchBuilder first;
  first.AddEvent(MakeValidEvent("e1"), 1);
  ASSERT_TRUE(store->Append(first.batch()).ok());
  absl::StatusOr<pg::ResultPtr> r = pg::Exec(
      c.get(),
      "BEGIN; SELECT * FROM audit.begin_append();"
      " INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,"
      " occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,"
      " leaf_hash, chain_hash) VALUES (2, 'e2', '/s', 't', '1.0', 'x', now(), clock_timestamp(),"
      " 'orders.events', 1, 2, sha256('a'), sha256('b'), sha256('c'))");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(pg::SqlStateOf(r.status()), "AU001") << r.status();
  EXPECT_NE(r.status().message().find("chain hash"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace audit::ingestor
