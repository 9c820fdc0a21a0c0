#!/usr/bin/env bash
# The torture suite at its short scale: every scenario, every check (docs/RELIABILITY.md).
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$PWD/..}/audit_trail
exec "$RUNFILES/tests/torture/audit-torture" --scale=short --json_out="${TEST_UNDECLARED_OUTPUTS_DIR:-/tmp}/torture.json"
