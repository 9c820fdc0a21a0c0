#!/usr/bin/env bash
# A smoke run of the benchmark tool: every measurement runs and reports (no timing is judged).
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$PWD/..}/audit_trail
OUT=${TEST_TMPDIR:-/tmp}/bench.json
"$RUNFILES/tools/bench/audit-bench" --smoke --json_out="$OUT"
for m in "raw COPY" "ingest end to end" "consumer alone" "replay, 500" "history over gRPC, p50" "page "; do
  grep -q "\"name\":\"$m" "$OUT" || { echo "FAIL: no result for $m" >&2; exit 1; }
done
echo PASS
