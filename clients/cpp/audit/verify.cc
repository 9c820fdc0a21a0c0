#include "audit/verify.h"

#include "absl/strings/str_cat.h"
#include "audit/checkpoint.h"
#include "audit/record.h"

namespace audit {
namespace {

bool Matches(const std::string& stored, const Sha256Digest& computed) {
  return stored.size() == computed.size() &&
         std::equal(computed.begin(), computed.end(),
                    reinterpret_cast<const uint8_t*>(stored.data()));
}

}  // namespace

LogVerifier::LogVerifier(Options options)
    : options_(std::move(options)),
      next_position_(options_.first_position),
      chain_(options_.chain_before),
      frontier_(options_.frontier_before) {
  trusted_.insert(options_.trusted_keys.begin(), options_.trusted_keys.end());
  report_.keys_pinned = !trusted_.empty();
  report_.verified_through = options_.first_position - 1;
}

void LogVerifier::Fail(int64_t position, std::string problem) {
  if (!report_.ok) return;
  report_.ok = false;
  report_.first_bad_position = position;
  report_.problem = std::move(problem);
}

void LogVerifier::FailLog(int64_t position, std::string problem) {
  if (!log_problem_.has_value()) log_problem_.emplace(position, std::move(problem));
}

void LogVerifier::AddCheckpoint(const v1::Checkpoint& c) {
  if (!report_.ok || log_problem_.has_value()) return;
  ++report_.checkpoints_checked;
  // The first position this entry was to cover, beyond the previous valid entry.
  const int64_t uncovered =
      std::max(last_entry_.has_value() ? last_entry_->tree_size() + 1 : 1, options_.first_position);
  const std::string who =
      absl::StrCat("checkpoint seq ", c.seq(), " (tree size ", c.tree_size(), ")");
  const int64_t expected_seq = last_entry_.has_value() ? last_entry_->seq() + 1 : c.seq();
  if (!last_entry_.has_value() && options_.first_position == 1 && c.seq() != 1) {
    return FailLog(1, absl::StrCat(who, ": the checkpoint log does not start at seq 1"));
  }
  if (c.seq() != expected_seq) {
    return FailLog(uncovered, absl::StrCat(who, ": expected seq ", expected_seq,
                                           " (an entry was removed or reordered)"));
  }
  const Sha256Digest previous =
      last_entry_.has_value() ? SignatureHash(*last_entry_) : Sha256Digest{};
  if (!Matches(c.previous_signature_hash(), previous) &&
      (last_entry_.has_value() || c.seq() == 1)) {
    return FailLog(uncovered, absl::StrCat(who, ": does not sign the previous entry's signature"));
  }
  if (c.kind() == v1::CHECKPOINT_KIND_UNSPECIFIED || !v1::CheckpointKind_IsValid(c.kind())) {
    return FailLog(uncovered, absl::StrCat(who, ": unknown kind"));
  }
  if (last_entry_.has_value() && c.tree_size() < last_entry_->tree_size()) {
    return FailLog(uncovered,
                   absl::StrCat(who, ": tree size went backwards from ", last_entry_->tree_size()));
  }
  if (absl::Status s = VerifyCheckpointSignature(c, c.public_key()); !s.ok()) {
    return FailLog(uncovered, absl::StrCat(who, ": ", s.message()));
  }
  if (trusted_.empty()) trusted_.insert(c.public_key());  // trust on first use
  if (!trusted_.count(c.public_key())) {
    // A new key is trusted only through a rotation endorsed by a trusted key.
    bool endorsed = false;
    if (c.kind() == v1::CHECKPOINT_KIND_KEY_ROTATION && !c.endorsement().empty()) {
      for (const std::string& key : trusted_) {
        if (KeyId(key) == c.endorsing_key_id() &&
            VerifySignature(key, CheckpointPayload(c), c.endorsement()).ok()) {
          endorsed = true;
        }
      }
    }
    if (!endorsed) {
      return FailLog(uncovered,
                     absl::StrCat(who, ": signed by key ", c.key_id(), ", which is not trusted"));
    }
    trusted_.insert(c.public_key());
  }
  last_entry_ = c;
  if (c.tree_size() < options_.first_position) return;  // before the verified range
  due_.push_back(c);
  CheckDueCheckpoints();
}

void LogVerifier::CheckDueCheckpoints() {
  while (report_.ok && !due_.empty() && due_.front().tree_size() == next_position_ - 1) {
    const v1::Checkpoint& c = due_.front();
    const Sha256Digest root = frontier_.Root();
    if (!Matches(c.root_hash(), root) || !Matches(c.chain_hash(), chain_)) {
      return Fail(
          report_.verified_through + 1,
          absl::StrCat(
              "checkpoint seq ", c.seq(), " (tree size ", c.tree_size(),
              ") does not match the log: positions ", report_.verified_through + 1, "..",
              c.tree_size(), " cannot be proven (", Matches(c.root_hash(), root) ? "" : "root",
              Matches(c.root_hash(), root) || Matches(c.chain_hash(), chain_) ? "" : " and ",
              Matches(c.chain_hash(), chain_) ? "" : "chain", " differ)"));
    }
    report_.verified_through = c.tree_size();
    due_.pop_front();
  }
}

void LogVerifier::AddEvent(const v1::StoredEvent& e) {
  if (!report_.ok) return;
  if (log_problem_.has_value() && e.position() >= log_problem_->first) return;
  CheckDueCheckpoints();  // entries at the verifier's starting point
  if (!report_.ok) return;
  if (e.position() != next_position_) {
    return Fail(
        next_position_,
        e.position() > next_position_
            ? absl::StrCat("position ", next_position_, " is missing (next is ", e.position(), ")")
            : absl::StrCat("position ", e.position(), " appears out of order"));
  }
  ++report_.events_checked;
  report_.last_position = e.position();
  const Sha256Digest content = RecomputeContentHash(e);
  if (!Matches(e.content_hash(), content)) {
    return Fail(e.position(), absl::StrCat("position ", e.position(),
                                           ": the event does not match its content hash"));
  }
  const Sha256Digest leaf = RecomputeLeafHash(e);
  if (!Matches(e.leaf_hash(), leaf)) {
    return Fail(e.position(), absl::StrCat("position ", e.position(),
                                           ": the record does not match its leaf hash"));
  }
  const Sha256Digest chain = ChainHash(chain_, leaf);
  if (!Matches(e.chain_hash(), chain)) {
    return Fail(e.position(), absl::StrCat("position ", e.position(),
                                           ": the chain is broken (chain hash differs)"));
  }
  chain_ = chain;
  frontier_.Append(leaf, 64, nullptr);
  ++next_position_;
  CheckDueCheckpoints();
}

VerifyReport LogVerifier::Finish() {
  CheckDueCheckpoints();
  if (report_.ok && log_problem_.has_value()) {
    Fail(log_problem_->first, log_problem_->second);
    return report_;
  }
  if (report_.ok && !due_.empty()) {
    const v1::Checkpoint& c = due_.front();
    Fail(next_position_,
         absl::StrCat("checkpoint seq ", c.seq(), " covers tree size ", c.tree_size(),
                      " but the log ends at position ", next_position_ - 1, " (truncated)"));
  }
  return report_;
}

LogAnchor::LogAnchor(std::vector<std::string> trusted_keys, std::optional<v1::Checkpoint> trusted)
    : keys_(std::move(trusted_keys)), trusted_(std::move(trusted)) {}

absl::Status LogAnchor::Advance(const v1::Checkpoint& next,
                                absl::Span<const std::string> consistency_proof) {
  const std::string who =
      absl::StrCat("checkpoint seq ", next.seq(), " (tree size ", next.tree_size(), ")");
  bool key_trusted = false;
  for (const std::string& k : keys_) key_trusted |= k == next.public_key();
  if (!key_trusted && next.kind() == v1::CHECKPOINT_KIND_KEY_ROTATION &&
      !next.endorsement().empty()) {
    for (const std::string& k : keys_) {
      if (KeyId(k) == next.endorsing_key_id() &&
          VerifySignature(k, CheckpointPayload(next), next.endorsement()).ok()) {
        key_trusted = true;
      }
    }
  }
  if (!key_trusted) {
    return absl::DataLossError(
        absl::StrCat(who, ": signed by key ", next.key_id(), ", which is not trusted"));
  }
  if (absl::Status s = VerifyCheckpointSignature(next, next.public_key()); !s.ok()) {
    return absl::DataLossError(absl::StrCat(who, ": ", s.message()));
  }
  Sha256Digest next_root;
  if (!DigestFromBytes(next.root_hash(), &next_root) || next.chain_hash().size() != 32) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": malformed hashes"));
  }
  if (trusted_.has_value()) {
    const v1::Checkpoint& t = *trusted_;
    if (next.tree_size() < t.tree_size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, " is older than the trusted checkpoint (tree size ", t.tree_size(), ")"));
    }
    if (next.tree_size() == t.tree_size()) {
      if (next.root_hash() != t.root_hash() || next.chain_hash() != t.chain_hash()) {
        return absl::DataLossError(absl::StrCat(
            who,
            ": a different root for the same tree size as the trusted checkpoint: the log "
            "was forked or rewritten"));
      }
    } else if (t.tree_size() > 0) {
      Sha256Digest old_root;
      std::vector<Sha256Digest> proof;
      for (const std::string& h : consistency_proof) {
        Sha256Digest d;
        if (!DigestFromBytes(h, &d)) {
          return absl::InvalidArgumentError("malformed consistency proof hash");
        }
        proof.push_back(d);
      }
      if (!DigestFromBytes(t.root_hash(), &old_root) ||
          !merkle::VerifyConsistency(static_cast<uint64_t>(t.tree_size()),
                                     static_cast<uint64_t>(next.tree_size()), old_root, next_root,
                                     proof)
               .ok()) {
        return absl::DataLossError(absl::StrCat(who, " does not extend the trusted checkpoint seq ",
                                                t.seq(), " (tree size ", t.tree_size(),
                                                "): the log was rewritten or the proof is forged"));
      }
    }
  }
  for (const std::string& k : keys_) {
    if (k == next.public_key()) {
      trusted_ = next;
      return absl::OkStatus();
    }
  }
  keys_.push_back(next.public_key());  // an endorsed rotation: the new key is trusted now
  trusted_ = next;
  return absl::OkStatus();
}

absl::Status LogAnchor::VerifyInclusion(const v1::GetInclusionProofResponse& r) const {
  if (!trusted_.has_value()) {
    return absl::FailedPreconditionError("no trusted checkpoint to verify against");
  }
  if (r.tree_size() != trusted_->tree_size()) {
    return absl::InvalidArgumentError(absl::StrCat("the proof is for tree size ", r.tree_size(),
                                                   ", the trusted checkpoint's is ",
                                                   trusted_->tree_size()));
  }
  if (r.event().position() != r.leaf_index() + 1) {
    return absl::DataLossError("the proof is for another position than its event's");
  }
  std::vector<Sha256Digest> proof;
  for (const std::string& h : r.hashes()) {
    Sha256Digest d;
    if (!DigestFromBytes(h, &d)) return absl::InvalidArgumentError("malformed proof hash");
    proof.push_back(d);
  }
  Sha256Digest root;
  DigestFromBytes(trusted_->root_hash(), &root);
  absl::Status s = merkle::VerifyInclusion(static_cast<uint64_t>(r.leaf_index()),
                                           static_cast<uint64_t>(r.tree_size()),
                                           RecomputeLeafHash(r.event()), proof, root);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat("position ", r.event().position(),
                                            " is not proven by checkpoint seq ", trusted_->seq(),
                                            ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status VerifyReplayFrame(const v1::ReplayEventsResponse& frame,
                               const v1::Checkpoint& checkpoint) {
  if (frame.events().empty()) return absl::OkStatus();
  if (frame.proof().tree_size() != checkpoint.tree_size()) {
    return absl::InvalidArgumentError("the frame's proof is for another tree size");
  }
  std::vector<Sha256Digest> leaves;
  int64_t expected = frame.events(0).position();
  for (const v1::StoredEvent& e : frame.events()) {
    if (e.position() != expected++) {
      return absl::InvalidArgumentError(absl::StrCat("the frame skips position ", expected - 1));
    }
    leaves.push_back(RecomputeLeafHash(e));
  }
  std::vector<Sha256Digest> proof;
  for (const std::string& h : frame.proof().hashes()) {
    Sha256Digest d;
    if (!DigestFromBytes(h, &d)) return absl::InvalidArgumentError("malformed proof hash");
    proof.push_back(d);
  }
  Sha256Digest root;
  if (!DigestFromBytes(checkpoint.root_hash(), &root)) {
    return absl::InvalidArgumentError("malformed checkpoint root");
  }
  absl::Status s =
      merkle::VerifyRange(static_cast<uint64_t>(frame.events(0).position() - 1), leaves,
                          static_cast<uint64_t>(checkpoint.tree_size()), proof, root);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("positions ", frame.events(0).position(), "..",
                                                   frame.events(frame.events_size() - 1).position(),
                                                   " are not proven by checkpoint seq ",
                                                   checkpoint.seq(), ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace audit
