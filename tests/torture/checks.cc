#include "tests/torture/checks.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "audit/json.h"
#include "audit/verify.h"
#include "services/common/checkpoint_rows.h"
#include "services/common/event_rows.h"
#include "services/common/pg.h"

namespace audit::torture {

void Report::Figure(const std::string& name, int64_t value) {
  figures.emplace_back(name, absl::StrCat(value));
}
void Report::Figure(const std::string& name, const std::string& value) {
  figures.emplace_back(name, value);
}
bool Report::Require(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Fail(absl::StrCat(what, ": ", s.ToString()));
  return s.ok();
}

bool WaitForLedger(const World& world, const Ledger& ledger, absl::Duration timeout) {
  return WaitUntil(
      [&] {
        absl::StatusOr<int64_t> n = world.Count(
            "SELECT (SELECT count(*) FROM audit.events) + (SELECT count(*) FROM "
            "audit.dead_letters)");
        return n.ok() && *n >= ledger.total();
      },
      timeout, absl::Milliseconds(250));
}

namespace {

// Streams the whole log through the SDK's verifier, pinning the scenario's key.
void VerifyLog(const World& world, Report* report) {
  absl::StatusOr<pg::ConnPtr> conn = pg::Connect(world.Url("reader"));
  if (!report->Require(conn.status(), "connect")) return;
  LogVerifier verifier({.trusted_keys = {world.public_key()}});
  const std::string checkpoints =
      absl::StrCat("SELECT ", kCheckpointColumns, " FROM audit.checkpoints ORDER BY seq");
  absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn->get(), checkpoints.c_str());
  if (!report->Require(r.status(), "read checkpoints")) return;
  const int entries = PQntuples(r->get());
  for (int i = 0; i < entries; ++i) {
    absl::StatusOr<v1::Checkpoint> c = CheckpointFromRow(r->get(), i);
    if (!report->Require(c.status(), "checkpoint row")) return;
    verifier.AddCheckpoint(*c);
  }
  for (int64_t from = 1;; from += 20000) {
    const std::string sql =
        absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events WHERE position >= ", from,
                     " AND position < ", from + 20000, " ORDER BY position");
    absl::StatusOr<pg::ResultPtr> rows = pg::ExecBinary(conn->get(), sql.c_str());
    if (!report->Require(rows.status(), "read events")) return;
    for (int i = 0; i < PQntuples(rows->get()); ++i) {
      absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(rows->get(), i);
      if (!report->Require(e.status(), "event row")) return;
      verifier.AddEvent(*e);
    }
    if (PQntuples(rows->get()) < 20000) break;
  }
  const VerifyReport v = verifier.Finish();
  report->Figure("checkpoints signed", entries);
  report->Figure("proven by checkpoints through", v.verified_through);
  if (v.ok && v.verified_through != v.last_position) {
    report->Fail(absl::StrCat("the last clean stop left positions ", v.verified_through + 1, "..",
                              v.last_position, " unsigned"));
  }
  if (!v.ok) {
    report->Fail(absl::StrCat("log verification failed at position ", v.first_bad_position, ": ",
                              v.problem));
  }
}

}  // namespace

void CheckAgainstLedger(const World& world, const Ledger& ledger, Report* report) {
  report->Figure("produced (acknowledged)", ledger.total());
  report->Figure("  valid events", ledger.valid());
  report->Figure("  poison", static_cast<int64_t>(ledger.poison.size()));
  report->Figure("  conflicting redeliveries", static_cast<int64_t>(ledger.conflicts.size()));

  // Events: every acknowledged id exactly once, with the original content.
  absl::StatusOr<std::vector<std::string>> rows = world.Query(
      "SELECT event_id || ' ' || coalesce(sequence, -1) || ' ' || "
      "coalesce(data->>'variant', '') FROM audit.events");
  if (!report->Require(rows.status(), "read events")) return;
  std::map<int, std::vector<int64_t>> by_producer;
  int64_t foreign = 0, wrong_content = 0, wrong_sequence = 0;
  const std::string prefix = ledger.run + "-p";
  for (const std::string& row : *rows) {
    std::vector<std::string> parts = absl::StrSplit(row, ' ');
    absl::string_view id = parts[0];
    int p = 0;
    int64_t seq = 0, sequence = 0;
    std::vector<std::string> id_parts;
    if (absl::ConsumePrefix(&id, prefix)) id_parts = absl::StrSplit(id, '-');
    if (id_parts.size() != 2 || !absl::SimpleAtoi(id_parts[0], &p) ||
        !absl::SimpleAtoi(id_parts[1], &seq)) {
      ++foreign;
      continue;
    }
    if (absl::SimpleAtoi(parts[1], &sequence) && sequence != seq) ++wrong_sequence;
    if (parts.size() < 3 || parts[2] != "original") ++wrong_content;
    by_producer[p].push_back(seq);
  }
  int64_t stored = 0, duplicates = 0, gaps = 0, unexpected = 0;
  for (size_t p = 0; p < ledger.sent.size(); ++p) {
    std::vector<int64_t>& seqs = by_producer[static_cast<int>(p)];
    std::sort(seqs.begin(), seqs.end());
    int64_t expect = 1;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (i > 0 && seqs[i] == seqs[i - 1]) {
        ++duplicates;
        continue;
      }
      if (seqs[i] > ledger.sent[p]) {
        ++unexpected;
        continue;
      }
      gaps += seqs[i] - expect;
      expect = seqs[i] + 1;
      ++stored;
    }
    gaps += ledger.sent[p] + 1 - expect;
  }
  report->Figure("events stored", stored);
  if (stored != ledger.valid()) {
    report->Fail(absl::StrCat("stored ", stored, " of ", ledger.valid(), " valid events"));
  }
  if (duplicates > 0) report->Fail(absl::StrCat(duplicates, " events stored twice"));
  if (gaps > 0) report->Fail(absl::StrCat(gaps, " events missing (per-producer gaps)"));
  if (unexpected + foreign > 0) {
    report->Fail(absl::StrCat(unexpected + foreign, " stored events were never sent"));
  }
  if (wrong_content > 0) {
    report->Fail(absl::StrCat(wrong_content, " events stored with a conflicting content"));
  }
  if (wrong_sequence > 0) report->Fail(absl::StrCat(wrong_sequence, " wrong sequence numbers"));

  // Dead letters: each poison message once, with its class; each conflict once.
  absl::StatusOr<std::vector<std::string>> letters = world.Query(
      "SELECT coalesce(encode(raw_key, 'escape'), '') || ' ' || error_class || ' ' || "
      "coalesce(event_id, '') FROM audit.dead_letters");
  if (!report->Require(letters.status(), "read dead letters")) return;
  std::map<std::string, std::vector<std::string>> by_key;  // raw key -> classes
  std::map<std::string, int> conflicts_by_id;
  for (const std::string& row : *letters) {
    std::vector<std::string> parts = absl::StrSplit(row, ' ');
    if (parts.size() < 2) continue;
    by_key[parts[0]].push_back(parts[1]);
    if (parts[1] == "conflict" && parts.size() >= 3) conflicts_by_id[parts[2]]++;
  }
  int64_t misclassified = 0, twice = 0, lost = 0;
  for (const PoisonSent& p : ledger.poison) {
    auto it = by_key.find(p.key);
    if (it == by_key.end()) {
      ++lost;
      continue;
    }
    if (it->second.size() > 1) ++twice;
    const std::string want(ErrorClassName(p.expected));
    if (it->second[0] != want) {
      ++misclassified;
      if (misclassified == 1) {
        report->Fail(absl::StrCat("poison ", p.kind, " dead-lettered as ", it->second[0],
                                  ", expected ", want));
      }
    }
  }
  int64_t conflicts_ok = 0;
  for (const ConflictSent& c : ledger.conflicts) {
    const int n = conflicts_by_id[c.id];
    if (n == 1) ++conflicts_ok;
    if (n > 1) ++twice;
    if (n == 0) ++lost;
  }
  const int64_t dead = static_cast<int64_t>(letters->size());
  report->Figure("dead-lettered", dead);
  if (lost > 0)
    report->Fail(absl::StrCat(lost, " poison or conflicting messages not dead-lettered"));
  if (twice > 0) report->Fail(absl::StrCat(twice, " messages dead-lettered twice"));
  if (dead != static_cast<int64_t>(ledger.poison.size() + ledger.conflicts.size())) {
    report->Fail(absl::StrCat(dead, " dead letters for ", ledger.poison.size(), " poison and ",
                              ledger.conflicts.size(), " conflicts"));
  }
  if (stored + dead != ledger.total()) {
    report->Fail(
        absl::StrCat("stored + dead-lettered = ", stored + dead, ", produced ", ledger.total()));
  }
  report->Figure("stored + dead-lettered - produced", stored + dead - ledger.total());
  report->Figure("redeliveries absorbed", RedeliveriesAbsorbed(world.ingestor_logs()));
  VerifyLog(world, report);
}

int64_t RedeliveriesAbsorbed(const std::vector<std::string>& logs) {
  int64_t total = 0;
  for (const std::string& path : logs) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("\"msg\":\"batch stored\"") == std::string::npos) continue;
      absl::StatusOr<JsonValue> j = ParseJson(line);
      if (!j.ok() || !j->is_object()) continue;
      for (const auto& [k, v] : j->members) {
        int64_t n = 0;
        if ((k == "duplicates" || k == "dead_letters_existing") && absl::SimpleAtoi(v.scalar, &n)) {
          total += n;
        }
      }
    }
  }
  return total;
}

int64_t CountLogLines(const std::vector<std::string>& logs, const std::string& needle) {
  int64_t n = 0;
  for (const std::string& path : logs) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  }
  return n;
}

}  // namespace audit::torture
