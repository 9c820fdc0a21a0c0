// AuditService through a real gRPC channel (in-process) over a real PostgreSQL.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/rfc3339.h"
#include "audit/test_events.h"
#include "audit/v1/audit_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/query/query_server.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/seed.h"
#include "tests/fixtures/wait.h"

namespace audit::query {
namespace {

using ::audit::testing::MakeValidEvent;
using ::audit::testing::SeedDeadLetters;
using ::audit::testing::SeedEvents;
using ::audit::testing::WaitFor;

constexpr int kEvents = 12;

v1::Event Sample(int i) {
  v1::Event e = MakeValidEvent(absl::StrCat("e", i), absl::StrCat("order-", i % 3));
  e.set_source(i % 2 ? "/services/payments" : "/services/orders");
  e.set_type(i % 4 == 0 ? "com.acme.order.created" : "com.acme.payment.captured");
  e.mutable_time()->set_seconds(1767225600 + 60 * i);  // 2026-01-01T00:00Z + i minutes
  e.mutable_time()->set_nanos(0);
  e.set_correlation_id(absl::StrCat("corr-", i % 2));
  e.set_actor(absl::StrCat("user:", i % 4));
  e.set_tenant(i % 5 == 0 ? "globex" : "acme");
  e.set_text_data(
      absl::StrCat(R"({"n": )", i, R"(, "currency": ")", i % 2 ? "EUR" : "USD", R"("})"));
  return e;
}

google::protobuf::Timestamp Ts(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

std::vector<std::string> Ids(const google::protobuf::RepeatedPtrField<v1::StoredEvent>& events) {
  std::vector<std::string> ids;
  for (const v1::StoredEvent& e : events) ids.push_back(e.event().id());
  return ids;
}

class AuditServiceTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    testing::PostgresTest<>::SetUp();
    std::vector<v1::Event> events;
    for (int i = 0; i < kEvents; ++i) events.push_back(Sample(i));
    absl::StatusOr<std::vector<v1::Event>> seeded =
        SeedEvents(server_->Url(db_, "ingestor"), events);
    ASSERT_TRUE(seeded.ok()) << seeded.status();
    seeded_ = *seeded;
    StartServer({});
  }

  void StartServer(QueryServerOptions options) {
    if (options.pg_url.empty()) options.pg_url = server_->Url(db_, "reader");
    options.listen = "127.0.0.1:0";
    options.threads = 4;
    query_server_.reset();
    absl::StatusOr<std::unique_ptr<QueryServer>> s = QueryServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    query_server_ = *std::move(s);
    stub_ = v1::AuditService::NewStub(query_server_->InProcessChannel());
  }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::AuditService::Stub::*method)(grpc::ClientContext*,
                                                                   const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub_.get()->*method)(&ctx, request, response);
  }

  v1::ListEventsResponse List(const v1::ListEventsRequest& r) {
    v1::ListEventsResponse out;
    grpc::Status s = Call(&v1::AuditService::Stub::ListEvents, r, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Reads a whole replay; returns its frames and final status.
  grpc::Status Replay(const v1::ReplayEventsRequest& r, std::vector<v1::ReplayEventsResponse>* out,
                      std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    auto reader = stub_->ReplayEvents(&ctx, r);
    v1::ReplayEventsResponse frame;
    while (reader->Read(&frame)) out->push_back(frame);
    return reader->Finish();
  }

  // Appends kLargeEvents events of 20 KB of data, every tenth 300 KB (about 5.4 MB in all),
  // at positions kEvents + 1 onwards.
  static constexpr int kLargeEvents = 120;
  absl::Status SeedLargeEvents() {
    std::vector<v1::Event> large;
    for (int i = 0; i < kLargeEvents; ++i) {
      v1::Event e = Sample(kEvents + i);
      e.set_text_data(
          absl::StrCat(R"({"blob": ")", std::string(i % 10 == 0 ? 300000 : 20000, 'x'), R"("})"));
      large.push_back(std::move(e));
    }
    return SeedEvents(server_->Url(db_, "ingestor"), large, 7000).status();
  }

  // Calls a paged method from `request` on, following next_page_token until it is empty,
  // and hands every page to `each`; every call must succeed.
  template <typename Request, typename Response>
  void ForEachPage(v1::AuditService::Stub* stub,
                   grpc::Status (v1::AuditService::Stub::*method)(grpc::ClientContext*,
                                                                  const Request&, Response*),
                   Request request, const std::function<void(const Response&)>& each) {
    do {
      grpc::ClientContext ctx;
      Response page;
      const grpc::Status s = (stub->*method)(&ctx, request, &page);
      ASSERT_TRUE(s.ok()) << s.error_message();
      each(page);
      request.set_page_token(page.next_page_token());
    } while (!request.page_token().empty());
  }

  // A stub over TCP: gRPC's default limits on message sizes apply, as for any client.
  std::unique_ptr<v1::AuditService::Stub> TcpStub() {
    return v1::AuditService::NewStub(
        grpc::CreateChannel(query_server_->address(), grpc::InsecureChannelCredentials()));
  }

  std::vector<v1::Event> seeded_;
  std::unique_ptr<QueryServer> query_server_;
  std::unique_ptr<v1::AuditService::Stub> stub_;
};

TEST_F(AuditServiceTest, GetEventByPositionAndByKey) {
  v1::GetEventRequest r;
  r.set_position(3);
  v1::GetEventResponse out;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetEvent, r, &out).ok());
  EXPECT_EQ(out.event().position(), 3);
  EXPECT_EQ(out.event().event().SerializeAsString(), seeded_[2].SerializeAsString());
  EXPECT_EQ(out.event().provenance().topic(), "seed.events");
  EXPECT_EQ(out.event().content_hash().size(), 32u);

  r.mutable_key()->set_source("/services/payments");
  r.mutable_key()->set_id("e5");
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetEvent, r, &out).ok());
  EXPECT_EQ(out.event().position(), 6);
}

TEST_F(AuditServiceTest, MissingEventsAreNotFound) {
  v1::GetEventRequest r;
  r.set_position(999);
  v1::GetEventResponse out;
  grpc::Status s = Call(&v1::AuditService::Stub::GetEvent, r, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no event at position 999");
  r.mutable_key()->set_source("/services/orders");
  r.mutable_key()->set_id("e5");  // e5 is a payments event
  EXPECT_EQ(Call(&v1::AuditService::Stub::GetEvent, r, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuditServiceTest, ListEventsFiltersCombine) {
  const auto list = [&](std::function<void(v1::EventFilter*)> set) {
    v1::ListEventsRequest r;
    set(r.mutable_filter());
    return Ids(List(r).events());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list([](v1::EventFilter* f) { f->set_subject("order-1"); }),
            (V{"e1", "e4", "e7", "e10"}));
  EXPECT_EQ(list([](v1::EventFilter* f) { f->add_types("com.acme.order.created"); }),
            (V{"e0", "e4", "e8"}));
  EXPECT_EQ(list([](v1::EventFilter* f) {
              f->add_sources("/services/orders");
              f->set_subject("order-0");
            }),
            (V{"e0", "e6"}));
  EXPECT_EQ(list([](v1::EventFilter* f) {
              *f->mutable_occurred()->mutable_start() = Ts(1767225600 + 60 * 3);
              *f->mutable_occurred()->mutable_end() = Ts(1767225600 + 60 * 6);
            }),
            (V{"e3", "e4", "e5"}));
  EXPECT_EQ(list([](v1::EventFilter* f) { *f->mutable_recorded()->mutable_end() = Ts(1); }), V{});
  EXPECT_EQ(list([](v1::EventFilter* f) {
              *f->mutable_recorded()->mutable_start() = Ts(1);
              f->set_correlation_id("corr-1");
              f->set_actor("user:3");
            }),
            (V{"e3", "e7", "e11"}));
  EXPECT_EQ(list([](v1::EventFilter* f) { f->set_tenant("globex"); }), (V{"e0", "e5", "e10"}));
  EXPECT_EQ(list([](v1::EventFilter* f) {
              f->set_data_contains(R"({"currency": "EUR"})");
              f->add_types("com.acme.order.created");
            }),
            V{});
  EXPECT_EQ(list([](v1::EventFilter* f) { f->set_data_contains(R"({"n": 7})"); }), V{"e7"});
}

TEST_F(AuditServiceTest, KeysetPaginationWalksEveryEventOnceInEitherOrder) {
  for (v1::Order order : {v1::ORDER_OLDEST_FIRST, v1::ORDER_NEWEST_FIRST}) {
    v1::ListEventsRequest r;
    r.set_order(order);
    r.set_page_size(5);
    std::vector<int64_t> positions;
    int pages = 0;
    do {
      v1::ListEventsResponse page = List(r);
      for (const auto& e : page.events()) positions.push_back(e.position());
      r.set_page_token(page.next_page_token());
      ++pages;
    } while (!r.page_token().empty() && pages < 10);
    EXPECT_EQ(pages, 3);
    ASSERT_EQ(positions.size(), static_cast<size_t>(kEvents));
    for (int i = 0; i < kEvents; ++i) {
      EXPECT_EQ(positions[i], order == v1::ORDER_NEWEST_FIRST ? kEvents - i : i + 1);
    }
  }
}

TEST_F(AuditServiceTest, PagesStayCorrectWhileEventsAreAppended) {
  v1::ListEventsRequest r;
  r.set_page_size(10);
  v1::ListEventsResponse first = List(r);
  ASSERT_EQ(first.events_size(), 10);
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), {Sample(100)}, 100).ok());
  r.set_page_token(first.next_page_token());
  v1::ListEventsResponse second = List(r);
  EXPECT_EQ(Ids(second.events()), (std::vector<std::string>{"e10", "e11", "e100"}));
}

TEST_F(AuditServiceTest, SubjectHistoryInOrderAndAsOfAPastMoment) {
  v1::GetSubjectHistoryRequest r;
  r.set_subject("order-2");
  v1::GetSubjectHistoryResponse out;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetSubjectHistory, r, &out).ok());
  EXPECT_EQ(Ids(out.events()), (std::vector<std::string>{"e2", "e5", "e8", "e11"}));
  EXPECT_TRUE(out.next_page_token().empty());

  // A later event, then the history as the store knew it before it was recorded.
  const google::protobuf::Timestamp before = out.events(3).recorded_time();
  google::protobuf::Timestamp just_after = before;
  just_after.set_nanos(just_after.nanos() + 1000);
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), {Sample(101)}, 101).ok());  // order-2
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetSubjectHistory, r, &out).ok());
  EXPECT_EQ(out.events_size(), 5);
  *r.mutable_as_of() = just_after;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetSubjectHistory, r, &out).ok());
  EXPECT_EQ(out.events_size(), 4);
}

TEST_F(AuditServiceTest, StatisticsCountWhatTheFilterSelects) {
  ASSERT_TRUE(SeedDeadLetters(
                  server_->Url(db_, "ingestor"),
                  {ErrorClass::kUndecodable, ErrorClass::kUndecodable, ErrorClass::kInvalidTime},
                  500)
                  .ok());
  v1::GetStatisticsRequest r;
  v1::GetStatisticsResponse out;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetStatistics, r, &out).ok());
  EXPECT_EQ(out.event_count(), kEvents);
  EXPECT_EQ(out.newest_position(), kEvents);
  EXPECT_TRUE(out.has_newest_recorded_time());
  ASSERT_EQ(out.by_type_size(), 2);
  EXPECT_EQ(out.by_type(0).key(), "com.acme.payment.captured");
  EXPECT_EQ(out.by_type(0).count(), 9);
  ASSERT_EQ(out.by_source_size(), 2);
  EXPECT_EQ(out.by_source(0).count() + out.by_source(1).count(), kEvents);
  EXPECT_EQ(out.dead_letter_count(), 3);
  ASSERT_EQ(out.dead_letters_by_class_size(), 2);
  EXPECT_EQ(out.dead_letters_by_class(0).key(), "undecodable");
  EXPECT_EQ(out.dead_letters_by_class(0).count(), 2);

  *r.mutable_occurred()->mutable_end() = Ts(1767225600 + 60 * 4);
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetStatistics, r, &out).ok());
  EXPECT_EQ(out.event_count(), 4);
}

TEST_F(AuditServiceTest, DeadLettersNewestFirstVerbatimAndFiltered) {
  ASSERT_TRUE(SeedDeadLetters(
                  server_->Url(db_, "ingestor"),
                  {ErrorClass::kUndecodable, ErrorClass::kConflict, ErrorClass::kOversized}, 700)
                  .ok());
  v1::ListDeadLettersRequest r;
  r.set_page_size(2);
  v1::ListDeadLettersResponse out;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::ListDeadLetters, r, &out).ok());
  ASSERT_EQ(out.dead_letters_size(), 2);
  EXPECT_EQ(out.dead_letters(0).error_class(), v1::ERROR_CLASS_OVERSIZED);
  EXPECT_EQ(out.dead_letters(0).raw_value(), "raw-oversized");
  EXPECT_EQ(out.dead_letters(0).raw_key(), "k");
  ASSERT_EQ(out.dead_letters(0).raw_headers_size(), 2);
  EXPECT_EQ(out.dead_letters(0).raw_headers(0).value(), "v");
  EXPECT_FALSE(out.dead_letters(0).raw_headers(1).has_value());
  EXPECT_EQ(out.dead_letters(0).provenance().offset(), 702);
  ASSERT_FALSE(out.next_page_token().empty());
  r.set_page_token(out.next_page_token());
  ASSERT_TRUE(Call(&v1::AuditService::Stub::ListDeadLetters, r, &out).ok());
  ASSERT_EQ(out.dead_letters_size(), 1);
  EXPECT_EQ(out.dead_letters(0).error_class(), v1::ERROR_CLASS_UNDECODABLE);

  v1::ListDeadLettersRequest only;
  only.set_error_class(v1::ERROR_CLASS_CONFLICT);
  ASSERT_TRUE(Call(&v1::AuditService::Stub::ListDeadLetters, only, &out).ok());
  ASSERT_EQ(out.dead_letters_size(), 1);
  EXPECT_EQ(out.dead_letters(0).reason(), "reason 1");
}

// Every bad request gets INVALID_ARGUMENT naming the field, before touching the database.
TEST_F(AuditServiceTest, BadRequestsGetPreciseStatuses) {
  struct Case {
    const char* name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    const char* message;
  };
  const auto list = [&](std::function<void(v1::ListEventsRequest*)> set) {
    return [this, set] {
      v1::ListEventsRequest r;
      set(&r);
      v1::ListEventsResponse out;
      return Call(&v1::AuditService::Stub::ListEvents, r, &out);
    };
  };
  v1::ListEventsRequest paged;
  paged.set_page_size(2);
  const std::string token = List(paged).next_page_token();
  v1::ListDeadLettersRequest dl_paged;
  const std::vector<Case> cases = {
      {"get without lookup",
       [&] {
         v1::GetEventResponse out;
         return Call(&v1::AuditService::Stub::GetEvent, v1::GetEventRequest(), &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "lookup: set either position or key"},
      {"get position 0",
       [&] {
         v1::GetEventRequest r;
         r.set_position(0);
         v1::GetEventResponse out;
         return Call(&v1::AuditService::Stub::GetEvent, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "position: must be positive"},
      {"get key without source",
       [&] {
         v1::GetEventRequest r;
         r.mutable_key()->set_id("x");
         v1::GetEventResponse out;
         return Call(&v1::AuditService::Stub::GetEvent, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "key.source: required"},
      {"inverted occurred range", list([](v1::ListEventsRequest* r) {
         *r->mutable_filter()->mutable_occurred()->mutable_start() = Ts(2000);
         *r->mutable_filter()->mutable_occurred()->mutable_end() = Ts(1000);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.occurred: start must be before end"},
      {"inverted recorded range", list([](v1::ListEventsRequest* r) {
         *r->mutable_filter()->mutable_recorded()->mutable_start() = Ts(5);
         *r->mutable_filter()->mutable_recorded()->mutable_end() = Ts(5);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.recorded: start must be before end"},
      {"timestamp out of range", list([](v1::ListEventsRequest* r) {
         *r->mutable_filter()->mutable_occurred()->mutable_end() = Ts(300000000000);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.occurred.end: timestamp out of range"},
      {"page size negative", list([](v1::ListEventsRequest* r) { r->set_page_size(-1); }),
       grpc::StatusCode::INVALID_ARGUMENT, "page_size: must be between 1 and 1000"},
      {"page size too large", list([](v1::ListEventsRequest* r) { r->set_page_size(1001); }),
       grpc::StatusCode::INVALID_ARGUMENT, "page_size: must be between 1 and 1000"},
      {"malformed page token", list([](v1::ListEventsRequest* r) { r->set_page_token("abc"); }),
       grpc::StatusCode::INVALID_ARGUMENT, "page_token: malformed"},
      {"forged page token", list([&](v1::ListEventsRequest* r) {
         std::string t = token;
         t[5] = t[5] == 'A' ? 'B' : 'A';
         r->set_page_token(t);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "page_token"},
      {"foreign page token", list([&](v1::ListEventsRequest* r) {
         r->mutable_filter()->set_subject("order-1");  // a different query
         r->set_page_token(token);
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "page_token: issued for a different query"},
      {"page token of another method",
       [&] {
         v1::ListDeadLettersRequest r;
         r.set_page_token(token);
         v1::ListDeadLettersResponse out;
         return Call(&v1::AuditService::Stub::ListDeadLetters, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "page_token: issued for a different query"},
      {"malformed JSON filter",
       list([](v1::ListEventsRequest* r) { r->mutable_filter()->set_data_contains("{\"a\":"); }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.data_contains: not valid JSON"},
      {"NUL in a filter string", list([](v1::ListEventsRequest* r) {
         r->mutable_filter()->set_subject(std::string("a\0b", 3));
       }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.subject: contains a NUL"},
      {"empty type in list",
       list([](v1::ListEventsRequest* r) { r->mutable_filter()->add_types(""); }),
       grpc::StatusCode::INVALID_ARGUMENT, "filter.types[0]: empty"},
      {"unknown order",
       list([](v1::ListEventsRequest* r) { r->set_order(static_cast<v1::Order>(7)); }),
       grpc::StatusCode::INVALID_ARGUMENT, "order: unknown value 7"},
      {"unknown error class",
       [&] {
         v1::ListDeadLettersRequest r;
         r.set_error_class(static_cast<v1::ErrorClass>(42));
         v1::ListDeadLettersResponse out;
         return Call(&v1::AuditService::Stub::ListDeadLetters, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "error_class: unknown value 42"},
      {"history without subject",
       [&] {
         v1::GetSubjectHistoryResponse out;
         return Call(&v1::AuditService::Stub::GetSubjectHistory, v1::GetSubjectHistoryRequest(),
                     &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "subject: required"},
      {"statistics inverted range",
       [&] {
         v1::GetStatisticsRequest r;
         *r.mutable_recorded()->mutable_start() = Ts(9);
         *r.mutable_recorded()->mutable_end() = Ts(1);
         v1::GetStatisticsResponse out;
         return Call(&v1::AuditService::Stub::GetStatistics, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "recorded: start must be before end"},
      {"replay frame too large",
       [&] {
         v1::ReplayEventsRequest r;
         r.set_max_events_per_frame(5001);
         std::vector<v1::ReplayEventsResponse> frames;
         return Replay(r, &frames);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "max_events_per_frame: must be between 1 and 5000"},
      {"replay negative start",
       [&] {
         v1::ReplayEventsRequest r;
         r.set_after_position(-5);
         std::vector<v1::ReplayEventsResponse> frames;
         return Replay(r, &frames);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "after_position: must not be negative"},
  };
  for (const Case& c : cases) {
    const grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.message), std::string::npos)
        << c.name << ": '" << s.error_message() << "' lacks '" << c.message << "'";
  }
}

// Recorded-time ranges are served through position bounds found by binary search (recorded_at
// never decreases along positions); the answers must be exactly those of the plain condition,
// at the boundaries, with ties (a batch shares one recorded_at), and with a hole in the log.
TEST_F(AuditServiceTest, RecordedRangesAreExactAtTheirBoundaries) {
  std::vector<google::protobuf::Timestamp> batch_times;
  for (int b = 0; b < 5; ++b) {
    std::vector<v1::Event> batch;
    for (int i = 0; i < 3; ++i) batch.push_back(Sample(100 + 3 * b + i));
    ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), batch, 100 + 3 * b).ok());
    const std::vector<std::string> t = Query(
        absl::StrCat("SELECT (extract(epoch FROM recorded_at) * 1000000)::bigint FROM audit.events "
                     "WHERE position = ",
                     kEvents + 3 * b + 1));
    ASSERT_EQ(t.size(), 1u);
    batch_times.push_back(FromUnixMicros(std::stoll(t[0])));
  }
  const auto ids_in = [&](const google::protobuf::Timestamp* from,
                          const google::protobuf::Timestamp* to) {
    v1::ListEventsRequest r;
    if (from) *r.mutable_filter()->mutable_recorded()->mutable_start() = *from;
    if (to) *r.mutable_filter()->mutable_recorded()->mutable_end() = *to;
    r.set_page_size(1000);
    return Ids(List(r).events());
  };
  const auto expected = [&](int first_batch, int end_batch) {
    std::vector<std::string> out;
    for (int i = 100 + 3 * first_batch; i < 100 + 3 * end_batch; ++i) {
      out.push_back(absl::StrCat("e", i));
    }
    return out;
  };
  EXPECT_EQ(ids_in(&batch_times[1], &batch_times[3]), expected(1, 3));
  EXPECT_EQ(ids_in(&batch_times[4], nullptr), expected(4, 5));
  EXPECT_EQ(ids_in(&batch_times[2], &batch_times[3]), expected(2, 3)) << "one batch";
  google::protobuf::Timestamp later = batch_times[4];
  later.set_seconds(later.seconds() + 3600);
  EXPECT_TRUE(ids_in(&later, nullptr).empty()) << "after the head";
  v1::GetStatisticsRequest stats;
  *stats.mutable_recorded()->mutable_start() = batch_times[1];
  *stats.mutable_recorded()->mutable_end() = batch_times[4];
  v1::GetStatisticsResponse counts;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetStatistics, stats, &counts).ok());
  EXPECT_EQ(counts.event_count(), 9);
  v1::ReplayEventsRequest replay;
  *replay.mutable_from_recorded_time() = batch_times[3];
  std::vector<v1::ReplayEventsResponse> frames;
  ASSERT_TRUE(Replay(replay, &frames).ok());
  std::vector<std::string> replayed;
  for (const auto& f : frames) {
    for (const auto& id : Ids(f.events())) replayed.push_back(id);
  }
  EXPECT_EQ(replayed, expected(3, 5));
  // A hole (a deleted event) disables the shortcut, not the answer.
  Query(
      absl::StrCat("ALTER TABLE audit.events DISABLE TRIGGER USER; DELETE FROM audit.events "
                   "WHERE position = ",
                   kEvents + 2,
                   "; ALTER TABLE audit.events ENABLE TRIGGER "
                   "USER; SELECT 1"));
  std::vector<std::string> without = expected(1, 3);
  EXPECT_EQ(ids_in(&batch_times[1], &batch_times[3]), without);
}

TEST_F(AuditServiceTest, ReplayStreamsEverythingInOrderInFramesThenEnds) {
  v1::ReplayEventsRequest r;
  r.set_max_events_per_frame(5);
  std::vector<v1::ReplayEventsResponse> frames;
  ASSERT_TRUE(Replay(r, &frames).ok());
  std::vector<int64_t> positions;
  for (const auto& f : frames) {
    EXPECT_LE(f.events_size(), 5);
    for (const auto& e : f.events()) positions.push_back(e.position());
  }
  ASSERT_EQ(positions.size(), static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(positions[i], i + 1);
  ASSERT_FALSE(frames.empty());
  EXPECT_TRUE(frames.back().caught_up());
  EXPECT_EQ(frames.back().last_position(), kEvents);
}

// Whatever the frame size and wherever the replay starts, every position comes exactly once,
// in order, in full frames (only the last one shorter).
TEST_F(AuditServiceTest, LargeFramesComeWholeInOrderWithoutGapsOrRepeats) {
  std::vector<v1::Event> more;
  for (int i = 0; i < 1000; ++i) more.push_back(Sample(5000 + i));
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), more, 5000).ok());
  const int64_t total = kEvents + 1000;
  for (int frame_size : {128, 301, 500, 127, 5000}) {
    for (int64_t after : {int64_t{0}, total - 70, total - 128, total}) {
      v1::ReplayEventsRequest r;
      r.set_max_events_per_frame(frame_size);
      r.set_after_position(after);
      std::vector<v1::ReplayEventsResponse> frames;
      ASSERT_TRUE(Replay(r, &frames).ok()) << frame_size << " after " << after;
      std::vector<int64_t> positions;
      for (size_t f = 0; f < frames.size(); ++f) {
        const int n = frames[f].events_size();
        EXPECT_LE(n, frame_size);
        if (f + 1 < frames.size()) {
          EXPECT_EQ(n, frame_size) << "frame " << f << " not full";
        }
        for (const auto& e : frames[f].events()) positions.push_back(e.position());
        if (n > 0) {
          EXPECT_EQ(frames[f].last_position(), frames[f].events(n - 1).position());
        }
      }
      ASSERT_EQ(positions.size(), static_cast<size_t>(total - after))
          << frame_size << " after " << after;
      for (size_t i = 0; i < positions.size(); ++i) {
        ASSERT_EQ(positions[i], after + 1 + static_cast<int64_t>(i)) << frame_size;
      }
      ASSERT_FALSE(frames.empty());
      EXPECT_TRUE(frames.back().caught_up());
      EXPECT_EQ(frames.back().last_position(), total);
    }
  }
}

// Frames of large events stop at the byte budget (never at zero events), so even the largest
// frame size arrives through a TCP channel with gRPC's default 4 MiB limit on received
// messages, every position exactly once and in order.
TEST_F(AuditServiceTest, FramesOfLargeEventsStayWithinTheByteBudget) {
  ASSERT_TRUE(SeedLargeEvents().ok());
  const int64_t total = kEvents + kLargeEvents;
  auto tcp = TcpStub();
  for (int frame_size : {5000, 500, 7}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ReplayEventsRequest r;
    r.set_max_events_per_frame(frame_size);
    auto reader = tcp->ReplayEvents(&ctx, r);
    v1::ReplayEventsResponse frame;
    std::vector<int64_t> positions;
    int frames = 0;
    bool caught_up = false;
    while (reader->Read(&frame)) {
      ++frames;
      ASSERT_GT(frame.events_size(), 0) << "frame " << frames;
      EXPECT_LE(frame.events_size(), frame_size);
      int64_t first_bytes = static_cast<int64_t>(frame.events(0).ByteSizeLong());
      EXPECT_LE(static_cast<int64_t>(frame.ByteSizeLong()) - first_bytes,
                EventQueries::kReplayFrameBytes)
          << "frame " << frames << " of " << frame.events_size() << " events";
      for (const auto& e : frame.events()) positions.push_back(e.position());
      EXPECT_EQ(frame.last_position(), positions.back());
      caught_up = frame.caught_up();
    }
    const grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << frame_size << ": " << s.error_message();
    EXPECT_TRUE(caught_up);
    ASSERT_EQ(positions.size(), static_cast<size_t>(total)) << frame_size;
    for (size_t i = 0; i < positions.size(); ++i) ASSERT_EQ(positions[i], 1 + int64_t(i));
    // 120 events of 20-300 KB (about 5.4 MB): several frames even at 5000 per frame.
    if (frame_size >= 500) {
      EXPECT_GE(frames, 5) << frame_size;
    }
  }
}

// Pages of ListEvents, GetSubjectHistory and ListDeadLetters end early at the byte budget,
// with a token that continues right after the page's last item.
TEST_F(AuditServiceTest, PagesOfLargeEventsStayWithinTheByteBudget) {
  ASSERT_TRUE(SeedLargeEvents().ok());
  auto tcp = TcpStub();
  const auto check_page = [](const auto& page) {
    ASSERT_GT(page.events_size(), 0);
    EXPECT_LE(static_cast<int64_t>(page.ByteSizeLong() - page.events(0).ByteSizeLong()),
              EventQueries::kPageBytes);
  };
  std::vector<int64_t> listed;
  v1::ListEventsRequest list;
  list.set_page_size(1000);
  int pages = 0;
  ForEachPage<v1::ListEventsRequest, v1::ListEventsResponse>(
      tcp.get(), &v1::AuditService::Stub::ListEvents, list, [&](const auto& page) {
        check_page(page);
        for (const auto& e : page.events()) listed.push_back(e.position());
        ++pages;
      });
  ASSERT_EQ(listed.size(), static_cast<size_t>(kEvents + kLargeEvents));
  for (size_t i = 0; i < listed.size(); ++i) ASSERT_EQ(listed[i], 1 + static_cast<int64_t>(i));
  EXPECT_GE(pages, 5);

  std::vector<int64_t> history, expected;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (i % 3 == 0) expected.push_back(static_cast<int64_t>(i) + 1);  // order-0 (Sample)
  }
  v1::GetSubjectHistoryRequest h;
  h.set_subject("order-0");
  ForEachPage<v1::GetSubjectHistoryRequest, v1::GetSubjectHistoryResponse>(
      tcp.get(), &v1::AuditService::Stub::GetSubjectHistory, h, [&](const auto& page) {
        check_page(page);
        for (const auto& e : page.events()) history.push_back(e.position());
      });
  EXPECT_EQ(history, expected);

  // Dead letters (12 of 500 KB) too, newest first.
  std::vector<ErrorClass> classes(12, ErrorClass::kUndecodable);
  ASSERT_TRUE(SeedDeadLetters(server_->Url(db_, "ingestor"), classes, 9000, 500000).ok());
  std::vector<int64_t> ids;
  v1::ListDeadLettersRequest d;
  d.set_page_size(100);
  ForEachPage<v1::ListDeadLettersRequest, v1::ListDeadLettersResponse>(
      tcp.get(), &v1::AuditService::Stub::ListDeadLetters, d, [&](const auto& page) {
        ASSERT_GT(page.dead_letters_size(), 0);
        EXPECT_LE(static_cast<int64_t>(page.ByteSizeLong() - page.dead_letters(0).ByteSizeLong()),
                  EventQueries::kPageBytes);
        for (const auto& l : page.dead_letters()) {
          EXPECT_EQ(l.raw_value().size(), 500000u);
          ids.push_back(l.id());
        }
      });
  ASSERT_EQ(ids.size(), 12u);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i], ids[i - 1]);
}

TEST_F(AuditServiceTest, ReplayResumesAfterAPositionOrFromATime) {
  v1::ReplayEventsRequest r;
  r.set_after_position(9);
  std::vector<v1::ReplayEventsResponse> frames;
  ASSERT_TRUE(Replay(r, &frames).ok());
  std::vector<std::string> ids;
  for (const auto& f : frames) {
    for (const auto& id : Ids(f.events())) ids.push_back(id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"e9", "e10", "e11"}));

  // Everything seeded so far shares one recorded time; a later batch has a later one.
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), {Sample(200), Sample(201)}, 200).ok());
  v1::GetEventRequest g;
  g.set_position(kEvents + 1);
  v1::GetEventResponse got;
  ASSERT_TRUE(Call(&v1::AuditService::Stub::GetEvent, g, &got).ok());
  v1::ReplayEventsRequest from_time;
  *from_time.mutable_from_recorded_time() = got.event().recorded_time();
  frames.clear();
  ASSERT_TRUE(Replay(from_time, &frames).ok());
  ids.clear();
  for (const auto& f : frames) {
    for (const auto& id : Ids(f.events())) ids.push_back(id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"e200", "e201"}));
}

TEST_F(AuditServiceTest, FilteredReplayStillAdvancesLastPosition) {
  v1::ReplayEventsRequest r;
  r.mutable_filter()->set_subject("order-0");
  std::vector<v1::ReplayEventsResponse> frames;
  ASSERT_TRUE(Replay(r, &frames).ok());
  std::vector<std::string> ids;
  for (const auto& f : frames) {
    for (const auto& id : Ids(f.events())) ids.push_back(id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"e0", "e3", "e6", "e9"}));
  EXPECT_EQ(frames.back().last_position(), kEvents);  // e11 was passed over, not missed
}

TEST_F(AuditServiceTest, LiveReplayDeliversANewEventWithinASecond) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ReplayEventsRequest r;
  r.set_follow(true);
  r.set_after_position(kEvents);
  auto reader = stub_->ReplayEvents(&ctx, r);
  v1::ReplayEventsResponse frame;
  ASSERT_TRUE(reader->Read(&frame));  // the caught-up announcement
  EXPECT_TRUE(frame.caught_up());
  EXPECT_EQ(frame.events_size(), 0);
  const absl::Time appended = absl::Now();
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), {Sample(300)}, 300).ok());
  ASSERT_TRUE(reader->Read(&frame));
  const absl::Duration latency = absl::Now() - appended;
  ASSERT_EQ(frame.events_size(), 1);
  EXPECT_EQ(frame.events(0).event().id(), "e300");
  EXPECT_EQ(frame.last_position(), kEvents + 1);
  EXPECT_LT(latency, absl::Seconds(1));
  RecordProperty("live_latency_ms", static_cast<int>(absl::ToInt64Milliseconds(latency)));
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitFor([&] { return query_server_->audit_service().open_streams() == 0; },
                      absl::Seconds(10)));
}

TEST_F(AuditServiceTest, LiveReplayHonoursTheDeadline) {
  v1::ReplayEventsRequest r;
  r.set_follow(true);
  std::vector<v1::ReplayEventsResponse> frames;
  grpc::Status s = Replay(r, &frames, std::chrono::milliseconds(700));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  int events = 0;
  for (const auto& f : frames) events += f.events_size();
  EXPECT_EQ(events, kEvents);  // caught up before the deadline
  EXPECT_TRUE(WaitFor([&] { return query_server_->audit_service().open_streams() == 0; },
                      absl::Seconds(10)));
}

TEST_F(AuditServiceTest, TooManyStreamsIsResourceExhausted) {
  StartServer({.max_streams = 1});
  grpc::ClientContext ctx;
  v1::ReplayEventsRequest follow;
  follow.set_follow(true);
  auto first = stub_->ReplayEvents(&ctx, follow);
  v1::ReplayEventsResponse frame;
  ASSERT_TRUE(first->Read(&frame));
  std::vector<v1::ReplayEventsResponse> frames;
  grpc::Status second = Replay(follow, &frames);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(second.error_message().find("too many open replays (limit 1)"), std::string::npos);
  ctx.TryCancel();
  first->Finish();
}

TEST_F(AuditServiceTest, ShutdownEndsLiveReplaysResumably) {
  grpc::ClientContext ctx;
  v1::ReplayEventsRequest follow;
  follow.set_follow(true);
  auto reader = stub_->ReplayEvents(&ctx, follow);
  v1::ReplayEventsResponse frame;
  while (reader->Read(&frame) && !frame.caught_up()) {
  }
  query_server_->Shutdown(absl::Seconds(1));
  while (reader->Read(&frame)) {
  }
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("resume with after_position 12"), std::string::npos)
      << s.error_message();
}

// Shutdown cancels reads in flight; the stream must end cleanly, never touch a finished call.
TEST_F(AuditServiceTest, ShutdownWhileReadsAreInFlightIsSafe) {
  std::vector<v1::Event> many;
  for (int i = 0; i < 20000; ++i) many.push_back(Sample(1000 + i));
  ASSERT_TRUE(SeedEvents(server_->Url(db_, "ingestor"), many, 1000).ok());
  for (int round = 0; round < 5; ++round) {
    StartServer({});
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientReader<v1::ReplayEventsResponse>>> readers;
    for (int i = 0; i < 4; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      v1::ReplayEventsRequest r;
      r.set_max_events_per_frame(5000);
      readers.push_back(stub_->ReplayEvents(contexts.back().get(), r));
      v1::ReplayEventsResponse frame;
      ASSERT_TRUE(readers.back()->Read(&frame));  // the next read is now in flight
    }
    query_server_->Shutdown(absl::ZeroDuration());
    for (auto& reader : readers) {
      v1::ReplayEventsResponse frame;
      while (reader->Read(&frame)) {
      }
      const grpc::Status s = reader->Finish();
      EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE || s.ok()) << s.error_message();
    }
  }
}

TEST_F(AuditServiceTest, DatabaseDownIsUnavailableAndNotServing) {
  StartServer({.pg_url = "postgresql:///nowhere?host=/nonexistent&connect_timeout=1"});
  v1::GetEventRequest r;
  r.set_position(1);
  v1::GetEventResponse out;
  grpc::Status s = Call(&v1::AuditService::Stub::GetEvent, r, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  v1::ListEventsResponse list;
  EXPECT_EQ(Call(&v1::AuditService::Stub::ListEvents, v1::ListEventsRequest(), &list).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  auto health = grpc::health::v1::Health::NewStub(query_server_->InProcessChannel());
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse h;
  ASSERT_TRUE(health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

TEST_F(AuditServiceTest, HealthServesAndRejectsUnknownServices) {
  auto health = grpc::health::v1::Health::NewStub(query_server_->InProcessChannel());
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        grpc::health::v1::HealthCheckResponse h;
        return health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &h).ok() &&
               h.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      },
      absl::Seconds(10)));
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest r;
  r.set_service("no.such.Service");
  grpc::health::v1::HealthCheckResponse h;
  EXPECT_EQ(health->Check(&ctx, r, &h).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext watch_ctx;
  r.set_service("audit.v1.AuditService");
  auto watch = health->Watch(&watch_ctx, r);
  ASSERT_TRUE(watch->Read(&h));
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  watch_ctx.TryCancel();
  watch->Finish();
}

}  // namespace
}  // namespace audit::query
