#include "services/ingestor/leaf_feed.h"

#include <utility>

namespace audit::ingestor {

void LeafFeed::Publish(Run run) {
  if (run.leaves.empty()) return;
  auto shared = std::make_shared<const Run>(std::move(run));
  absl::MutexLock lock(&mu_);
  while (!runs_.empty() && runs_.back()->last() >= shared->first) {
    held_ -= static_cast<int64_t>(runs_.back()->leaves.size());
    dropped_ += static_cast<int64_t>(runs_.back()->leaves.size());
    runs_.pop_back();
  }
  held_ += static_cast<int64_t>(shared->leaves.size());
  runs_.push_back(std::move(shared));
  while (held_ > max_leaves_) {
    held_ -= static_cast<int64_t>(runs_.front()->leaves.size());
    dropped_ += static_cast<int64_t>(runs_.front()->leaves.size());
    runs_.pop_front();
  }
}

std::vector<std::shared_ptr<const LeafFeed::Run>> LeafFeed::After(int64_t after) {
  absl::MutexLock lock(&mu_);
  while (!runs_.empty() && runs_.front()->last() <= after) {
    held_ -= static_cast<int64_t>(runs_.front()->leaves.size());
    runs_.pop_front();
  }
  return {runs_.begin(), runs_.end()};
}

int64_t LeafFeed::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace audit::ingestor
