// The query core of AuditService: validated requests in, responses out, over one PostgreSQL
// connection of a role in audit_reader. No gRPC here; audit_service.cc adapts it.
//
// Errors: INVALID_ARGUMENT (naming the field) for a bad request, NOT_FOUND for a missing event,
// UNAVAILABLE when the database cannot be reached, DEADLINE_EXCEEDED when a statement ran out
// of time. Thread safety: const methods, one connection per concurrent call.
#ifndef SERVICES_QUERY_EVENT_QUERIES_H_
#define SERVICES_QUERY_EVENT_QUERIES_H_

#include <libpq-fe.h>

#include <cstdint>
#include <limits>
#include <optional>

#include "absl/status/statusor.h"
#include "audit/v1/audit_service.pb.h"
#include "services/query/page_token.h"

namespace audit::query {

// A replay in progress, as planned from its request.
struct ReplayPlan {
  int64_t start_after = 0;  // first frame reads positions after this
  // The last position to stream: the head at the start without `follow`, unbounded with it.
  int64_t stop_at = std::numeric_limits<int64_t>::max();
  int frame_events = 500;
  // The largest event (bytes, about) of the replay's last statement; 0 before the first.
  // A statement asks for no more rows than fit the frame's byte budget at that size, so that
  // its result (which libpq holds whole) stays near kReplayFrameBytes too. Updated by
  // ReadReplayFrame.
  int64_t largest_event_bytes = 0;
  bool follow = false;
  v1::EventFilter filter;
  // With with_proofs: the checkpoint the replay ends at and every frame is proven against.
  std::optional<v1::Checkpoint> checkpoint;
};

class EventQueries {
 public:
  // How many positions one replay frame scans at most, so that a selective filter over a long
  // log still yields frames (possibly empty, with advancing last_position) at a steady pace.
  static constexpr int64_t kReplayWindow = 50'000;
  // A frame stops short of frame_events once its events hold this many bytes (it always holds
  // at least one event): frames of large events stay well below gRPC's default 4 MiB limit on
  // received messages, and a slow client's two frames stay small.
  static constexpr int64_t kReplayFrameBytes = 1 << 20;
  // A page of ListEvents, GetSubjectHistory or ListDeadLetters ends early (with a
  // next_page_token) once its items reach this many bytes; it always holds at least one.
  static constexpr int64_t kPageBytes = 1 << 20;
  // Rows a replay's first statement asks for, before any event's size is known.
  static constexpr int kFirstReadRows = 64;

  explicit EventQueries(const PageTokenCodec* tokens) : tokens_(tokens) {}

  absl::StatusOr<v1::GetEventResponse> GetEvent(PGconn* conn, const v1::GetEventRequest& r) const;
  absl::StatusOr<v1::ListEventsResponse> ListEvents(PGconn* conn,
                                                    const v1::ListEventsRequest& r) const;
  absl::StatusOr<v1::GetSubjectHistoryResponse> GetSubjectHistory(
      PGconn* conn, const v1::GetSubjectHistoryRequest& r) const;
  // Consistent: all counts come from one snapshot.
  absl::StatusOr<v1::GetStatisticsResponse> GetStatistics(PGconn* conn,
                                                          const v1::GetStatisticsRequest& r) const;
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      PGconn* conn, const v1::ListDeadLettersRequest& r) const;

  // Validates a replay request and resolves where it starts and stops.
  absl::StatusOr<ReplayPlan> PlanReplay(PGconn* conn, const v1::ReplayEventsRequest& r) const;

  // The next frame after position `after`: matching events in order (at most frame_events,
  // and no more than kReplayFrameBytes of them beyond the first), last_position (every
  // position up to it considered) and caught_up (reached the head, or the plan's stop). With
  // a checkpoint in the plan, a RangeProof of the events, and the checkpoint itself in the
  // frame starting at the plan's start. Updates plan->largest_event_bytes.
  // The frame replaces what `frame` held; its messages and strings are reused (a replay
  // recycles its frames, which saves most allocations per event).
  absl::Status ReadReplayFrame(PGconn* conn, ReplayPlan* plan, int64_t after,
                               v1::ReplayEventsResponse* frame) const;

  // The head of the log (0 when empty).
  static absl::StatusOr<int64_t> Head(PGconn* conn);

 private:
  const PageTokenCodec* tokens_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_EVENT_QUERIES_H_
