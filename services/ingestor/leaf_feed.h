// Leaf hashes of committed appends, handed from the store to the checkpointer of the same
// process (docs/VERIFICATION.md, "Checkpoints").
//
// The store publishes the leaf hashes it computed for each batch once the batch's COMMIT has
// succeeded; the checkpointer folds them into the tree it signs instead of reading them back
// from the database. What it signs is then what this process wrote, and what the database
// holds is compared with it (the head's chain hash, the stored subtrees). Positions the feed
// does not hold (another ingestor wrote them, the process restarted, the bound dropped them)
// are read from the database as before.
//
// Bounded: beyond `max_leaves` the oldest runs are dropped (32 bytes a leaf). Thread-safe.
#ifndef SERVICES_INGESTOR_LEAF_FEED_H_
#define SERVICES_INGESTOR_LEAF_FEED_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audit/canonical.h"

namespace audit::ingestor {

class LeafFeed {
 public:
  // Consecutive committed leaves: positions first .. first + leaves.size() - 1, all recorded at
  // `recorded_micros` (one batch).
  struct Run {
    int64_t first = 0;
    int64_t recorded_micros = 0;
    std::vector<Sha256Digest> leaves;

    int64_t last() const { return first + static_cast<int64_t>(leaves.size()) - 1; }
  };

  // 4 Mi leaves (128 MiB): at 60,000 events/s, over a minute of checkpointer outage.
  static constexpr int64_t kDefaultMaxLeaves = int64_t{1} << 22;

  explicit LeafFeed(int64_t max_leaves = kDefaultMaxLeaves) : max_leaves_(max_leaves) {}

  // Called after the run's COMMIT succeeded. A run that does not start after the runs held
  // replaces those it overlaps (what is committed now is what counts); an empty run is ignored.
  void Publish(Run run);

  // The runs holding positions after `after`, in position order (the first may also hold
  // positions at or before it). Forgets every run that ends at or before `after`.
  std::vector<std::shared_ptr<const Run>> After(int64_t after);

  // Leaves dropped for the bound or replaced, since construction.
  int64_t dropped() const;

 private:
  const int64_t max_leaves_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const Run>> runs_ ABSL_GUARDED_BY(mu_);
  int64_t held_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_LEAF_FEED_H_
