#include "services/ingestor/leaf_feed.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace audit::ingestor {
namespace {

// A run of `n` leaves from `first`; leaf i's first byte is its position (mod 256).
LeafFeed::Run MakeRun(int64_t first, int n) {
  LeafFeed::Run run{.first = first, .recorded_micros = first * 10};
  for (int i = 0; i < n; ++i) {
    Sha256Digest d{};
    d[0] = static_cast<uint8_t>(first + i);
    run.leaves.push_back(d);
  }
  return run;
}

std::vector<int64_t> Firsts(const std::vector<std::shared_ptr<const LeafFeed::Run>>& runs) {
  std::vector<int64_t> firsts;
  for (const auto& r : runs) firsts.push_back(r->first);
  return firsts;
}

TEST(LeafFeedTest, HandsOutTheRunsAfterAPositionAndForgetsTheOnesBefore) {
  LeafFeed feed;
  feed.Publish(MakeRun(1, 10));  // 1..10
  feed.Publish(MakeRun(11, 5));  // 11..15
  feed.Publish(MakeRun(20, 5));  // 20..24 (16..19 written by another ingestor)
  EXPECT_EQ(Firsts(feed.After(0)), (std::vector<int64_t>{1, 11, 20}));
  // A run that holds the position after `after` is handed out whole.
  EXPECT_EQ(Firsts(feed.After(12)), (std::vector<int64_t>{11, 20}));
  // Runs ending at or before `after` are gone for good.
  EXPECT_EQ(Firsts(feed.After(0)), (std::vector<int64_t>{11, 20}));
  EXPECT_EQ(Firsts(feed.After(17)), (std::vector<int64_t>{20}));
  EXPECT_TRUE(feed.After(24).empty());
  EXPECT_EQ(feed.dropped(), 0);
}

TEST(LeafFeedTest, KeepsTheLeavesAndTheTimeOfEachRun) {
  LeafFeed feed;
  feed.Publish(MakeRun(7, 3));
  std::vector<std::shared_ptr<const LeafFeed::Run>> runs = feed.After(0);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]->last(), 9);
  EXPECT_EQ(runs[0]->recorded_micros, 70);
  ASSERT_EQ(runs[0]->leaves.size(), 3u);
  EXPECT_EQ(runs[0]->leaves[2][0], 9);
}

TEST(LeafFeedTest, DropsTheOldestRunsBeyondItsBound) {
  LeafFeed feed(/*max_leaves=*/25);
  feed.Publish(MakeRun(1, 10));
  feed.Publish(MakeRun(11, 10));
  feed.Publish(MakeRun(21, 10));  // 30 held > 25: 1..10 go
  EXPECT_EQ(Firsts(feed.After(0)), (std::vector<int64_t>{11, 21}));
  EXPECT_EQ(feed.dropped(), 10);
  // Forgetting frees room: 11..20 go, and 31..45 fit beside 21..30.
  EXPECT_EQ(Firsts(feed.After(20)), (std::vector<int64_t>{21}));
  feed.Publish(MakeRun(31, 15));
  EXPECT_EQ(Firsts(feed.After(0)), (std::vector<int64_t>{21, 31}));
  EXPECT_EQ(feed.dropped(), 10);
}

TEST(LeafFeedTest, ARunAtPositionsAlreadyHeldReplacesTheRunsItOverlaps) {
  LeafFeed feed;
  feed.Publish(MakeRun(1, 10));
  feed.Publish(MakeRun(11, 10));
  feed.Publish(MakeRun(15, 3));  // what is committed at 15.. now
  std::vector<std::shared_ptr<const LeafFeed::Run>> runs = feed.After(0);
  EXPECT_EQ(Firsts(runs), (std::vector<int64_t>{1, 15}));
  EXPECT_EQ(runs.back()->last(), 17);
  EXPECT_EQ(feed.dropped(), 10);
}

TEST(LeafFeedTest, IgnoresEmptyRuns) {
  LeafFeed feed;
  feed.Publish(MakeRun(5, 0));
  EXPECT_TRUE(feed.After(0).empty());
}

}  // namespace
}  // namespace audit::ingestor
