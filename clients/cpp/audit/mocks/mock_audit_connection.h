// gMock doubles of the SDK's connection, for users' own unit tests:
//
//   auto conn = std::make_shared<audit::mocks::MockAuditConnection>();
//   EXPECT_CALL(*conn, GetEvent).WillOnce(Return(response));
//   audit::AuditClient client(conn);
#ifndef CLIENTS_CPP_AUDIT_MOCKS_MOCK_AUDIT_CONNECTION_H_
#define CLIENTS_CPP_AUDIT_MOCKS_MOCK_AUDIT_CONNECTION_H_

#include <memory>
#include <optional>

#include "audit/audit_connection.h"
#include "gmock/gmock.h"

namespace audit::mocks {

class MockAuditConnection : public AuditConnection {
 public:
  MOCK_METHOD(absl::StatusOr<v1::GetEventResponse>, GetEvent, (const v1::GetEventRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::ListEventsResponse>, ListEvents, (const v1::ListEventsRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::GetSubjectHistoryResponse>, GetSubjectHistory,
              (const v1::GetSubjectHistoryRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::GetStatisticsResponse>, GetStatistics,
              (const v1::GetStatisticsRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::ListDeadLettersResponse>, ListDeadLetters,
              (const v1::ListDeadLettersRequest&), (override));
  MOCK_METHOD(std::unique_ptr<ReplayFrameReader>, ReplayEvents, (const v1::ReplayEventsRequest&),
              (override));
  MOCK_METHOD(absl::StatusOr<v1::GetLatestCheckpointResponse>, GetLatestCheckpoint,
              (const v1::GetLatestCheckpointRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::ListCheckpointsResponse>, ListCheckpoints,
              (const v1::ListCheckpointsRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::GetInclusionProofResponse>, GetInclusionProof,
              (const v1::GetInclusionProofRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::GetConsistencyProofResponse>, GetConsistencyProof,
              (const v1::GetConsistencyProofRequest&), (override));
  MOCK_METHOD(absl::StatusOr<v1::VerifyRangeResponse>, VerifyRange, (const v1::VerifyRangeRequest&),
              (override));
};

class MockReplayFrameReader : public ReplayFrameReader {
 public:
  MOCK_METHOD((absl::StatusOr<std::optional<v1::ReplayEventsResponse>>), Next, (), (override));
  MOCK_METHOD(void, Cancel, (), (override));
};

}  // namespace audit::mocks

#endif  // CLIENTS_CPP_AUDIT_MOCKS_MOCK_AUDIT_CONNECTION_H_
