#include "tools/auditctl/verification.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/rfc3339.h"
#include "google/protobuf/util/json_util.h"

namespace audit::cli {

absl::Status BundleWriter::Write(const v1::BundleEntry& entry) {
  std::string line;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(entry, &line, options).ok()) {
    return absl::InternalError("cannot encode a bundle entry");
  }
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), out_) != line.size()) {
    return absl::UnavailableError("cannot write the bundle");
  }
  return absl::OkStatus();
}

absl::Status BundleWriter::Header(absl::string_view origin) {
  v1::BundleEntry entry;
  v1::BundleHeader* h = entry.mutable_header();
  h->set_format(kBundleFormat);
  *h->mutable_exported_time() = FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  h->set_origin(std::string(origin));
  return Write(entry);
}

absl::Status BundleWriter::Checkpoint(const v1::Checkpoint& c) {
  v1::BundleEntry entry;
  *entry.mutable_checkpoint() = c;
  return Write(entry);
}

absl::Status BundleWriter::Event(const v1::StoredEvent& e) {
  v1::BundleEntry entry;
  *entry.mutable_event() = e;
  return Write(entry);
}

VerificationRun::VerificationRun(std::vector<std::string> trusted_keys,
                                 std::optional<v1::Checkpoint> anchor)
    : verifier_({.trusted_keys = std::move(trusted_keys)}), anchor_(std::move(anchor)) {}

void VerificationRun::AddCheckpoint(const v1::Checkpoint& c) {
  verifier_.AddCheckpoint(c);
  checkpoints_.push_back(c);
  if (anchor_.has_value() && c.seq() == anchor_->seq()) {
    anchor_seen_ = true;
    anchor_differs_ =
        c.tree_size() != anchor_->tree_size() || c.root_hash() != anchor_->root_hash() ||
        c.chain_hash() != anchor_->chain_hash() || c.signature() != anchor_->signature();
  }
}

void VerificationRun::AddEvent(const v1::StoredEvent& e) { verifier_.AddEvent(e); }

Verification VerificationRun::Finish() {
  Verification v;
  v.report = verifier_.Finish();
  if (v.report.ok && anchor_.has_value()) {
    const v1::Checkpoint& a = *anchor_;
    const std::string who =
        absl::StrCat("the anchored checkpoint seq ", a.seq(), " (tree size ", a.tree_size(), ")");
    if (!anchor_seen_) {
      v.report.ok = false;
      v.report.first_bad_position = std::max<int64_t>(1, a.tree_size());
      v.report.problem = absl::StrCat(who, " is missing: the checkpoint log was cut short");
    } else if (anchor_differs_) {
      v.report.ok = false;
      v.report.first_bad_position = 1;
      v.report.problem =
          absl::StrCat(who, " was replaced: the log and its checkpoints were rewritten");
    } else if (v.report.verified_through < a.tree_size()) {
      v.report.ok = false;
      v.report.first_bad_position = v.report.verified_through + 1;
      v.report.problem = absl::StrCat(who, " is no longer proven by the log");
    }
  }
  for (const v1::Checkpoint& c : checkpoints_) {
    if (c.tree_size() == v.report.verified_through && v.report.verified_through > 0) {
      v.proven_by = c;  // the newest one of that size wins
    }
  }
  if (!checkpoints_.empty()) {
    v.last_checkpoint = checkpoints_.back();
    v.unsigned_tail =
        std::max<int64_t>(0, v.report.last_position - checkpoints_.back().tree_size());
  } else {
    v.unsigned_tail = v.report.last_position;
  }
  return v;
}

absl::StatusOr<Verification> VerifyBundle(std::istream& in,
                                          const std::vector<std::string>& trusted_keys,
                                          std::optional<v1::Checkpoint> anchor) {
  VerificationRun run(trusted_keys, std::move(anchor));
  std::string line;
  int64_t number = 0;
  bool header = false;
  bool events_started = false;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    v1::BundleEntry entry;
    if (!google::protobuf::util::JsonStringToMessage(line, &entry, options).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", number, ": not a bundle entry (protobuf JSON of BundleEntry)"));
    }
    if (!header) {
      if (!entry.has_header() || entry.header().format() != kBundleFormat) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", number, ": a bundle starts with a ", kBundleFormat, " header"));
      }
      header = true;
      continue;
    }
    switch (entry.entry_case()) {
      case v1::BundleEntry::kCheckpoint:
        if (events_started) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", number, ": checkpoints must come before the events"));
        }
        run.AddCheckpoint(entry.checkpoint());
        break;
      case v1::BundleEntry::kEvent:
        events_started = true;
        run.AddEvent(entry.event());
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("line ", number, ": unexpected ",
                                                       entry.has_header() ? "header" : "entry"));
    }
  }
  if (!header) return absl::InvalidArgumentError("empty bundle");
  return run.Finish();
}

std::string Describe(const Verification& v) {
  const VerifyReport& r = v.report;
  std::string out = absl::StrCat(
      "checked ", r.events_checked, " events and ", r.checkpoints_checked,
      " checkpoint-log entries",
      r.keys_pinned ? " against pinned keys" : " (keys NOT pinned: trusted on first use)", "\n");
  if (r.verified_through > 0) {
    absl::StrAppend(&out, "positions 1..", r.verified_through, " are proven");
    if (v.proven_by.has_value()) {
      absl::StrAppend(&out, " by checkpoint seq ", v.proven_by->seq(), " (signed ",
                      FormatRfc3339(v.proven_by->created_time()), " by key ", v.proven_by->key_id(),
                      ")");
    }
    out.push_back('\n');
  }
  if (r.ok && r.last_position > r.verified_through) {
    absl::StrAppend(&out, "positions ", r.verified_through + 1, "..", r.last_position,
                    " chain correctly but no checkpoint covers them yet\n");
  }
  if (r.ok) {
    absl::StrAppend(&out, "OK\n");
  } else {
    absl::StrAppend(&out, "FAILED at position ", r.first_bad_position, ": ", r.problem, "\n");
  }
  return out;
}

}  // namespace audit::cli
