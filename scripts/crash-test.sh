#!/usr/bin/env bash
# Crash test for the store (issue 4): runs `jointlend store-load` (routes loans, confirms their
# tranches from many tasks, fsyncs each acknowledgement to a file only after the store answered),
# kills it with SIGKILL at random moments, restarts it, and after every cycle checks:
#   - every acknowledged intake and confirmation is in the database exactly once (lost: 0, duplicated: 0);
#   - nothing is half-applied (a confirmation without its tranche change, ledger posting, audit
#     entry or idempotency record (its stored answer), or the other way round);
#   - `jointlend ledger verify` and `jointlend audit verify` pass.
# Usage: scripts/crash-test.sh [CYCLES]   (default 20; .ci/run uses 5). Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

cycles="${1:-20}"
if ! [[ "$cycles" =~ ^[0-9]+$ ]] || [ "$cycles" -lt 1 ]; then
    echo "usage: $0 [CYCLES]  (CYCLES a positive integer)" >&2
    exit 2
fi

if ! command -v sqlite3 >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq sqlite3) >/dev/null 2>&1 || { echo "crash-test: sqlite3 CLI missing and cannot be installed" >&2; exit 2; }
fi

swift build --product jointlend >/dev/null 2>&1 || swift build --product jointlend
bin="$(swift build --show-bin-path)/jointlend"

work="$(mktemp -d /tmp/jointlend-crash.XXXXXX)"
trap 'if [ -n "${pid:-}" ]; then kill -9 "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
db="$work/store.sqlite"
acks="$work/acks.log"
touch "$acks"

violations=0
q() { sqlite3 -batch -noheader "$db" "$1"; }

check() {
    local cycle="$1"
    # Load the acknowledgements into the database copy's temp tables (read-only towards the store).
    local report
    report="$(sqlite3 -batch -noheader "$db" <<SQL
CREATE TEMP TABLE ack(kind TEXT, a TEXT, b TEXT);
.mode list
.separator " "
.import $acks ack
.mode list
.separator "|"
SELECT
  (SELECT COUNT(*) FROM (SELECT DISTINCT a FROM ack WHERE kind = 'intake') x WHERE NOT EXISTS (SELECT 1 FROM loan l WHERE l.loan_ref = x.a))
  + (SELECT COUNT(*) FROM (SELECT DISTINCT a, b FROM ack WHERE kind = 'confirm') x
       WHERE NOT EXISTS (SELECT 1 FROM confirmation c WHERE c.funder_id = x.a AND c.serial = x.b)),
  (SELECT COUNT(*) FROM (SELECT funder_id, serial FROM confirmation GROUP BY 1, 2 HAVING COUNT(*) > 1))
  + (SELECT COUNT(*) FROM (SELECT reference FROM ledger_transaction WHERE kind IN ('tranche.funded', 'tranche.reserved') GROUP BY 1 HAVING COUNT(*) > 1))
  + (SELECT COUNT(*) FROM (SELECT tranche_id FROM confirmation GROUP BY 1 HAVING COUNT(*) > 1)),
  (SELECT COUNT(*) FROM confirmation c JOIN tranche t ON t.id = c.tranche_id WHERE t.state = 'requested' OR t.state != c.outcome)
  + ABS((SELECT COUNT(*) FROM tranche WHERE kind = 'partner' AND state IN ('funded', 'declined')) - (SELECT COUNT(*) FROM confirmation))
  + ABS((SELECT COUNT(*) FROM tranche WHERE kind = 'partner' AND state = 'funded') - (SELECT COUNT(*) FROM ledger_transaction WHERE kind = 'tranche.funded'))
  + (SELECT COUNT(*) FROM confirmation WHERE response IS NULL)
  + ABS((SELECT COUNT(*) FROM confirmation) - (SELECT COUNT(*) FROM audit_log WHERE action IN ('tranche.funded', 'tranche.declined')))
  + ABS((SELECT COUNT(*) FROM loan) - (SELECT COUNT(*) FROM audit_log WHERE action = 'loan.planned'))
  + ABS((SELECT COUNT(*) FROM loan WHERE state = 'funded') - (SELECT COUNT(*) FROM outbox WHERE destination = 'platform')),
  (SELECT COUNT(*) FROM (SELECT DISTINCT kind, a, b FROM ack));
SQL
)"
    IFS='|' read -r lost duplicated half acked <<<"$report"
    local ledger audit
    ledger="$("$bin" ledger verify --db "$db" 2>&1)" || { echo "cycle $cycle: $ledger" >&2; violations=$((violations + 1)); }
    audit="$("$bin" audit verify --db "$db" 2>&1)" || { echo "cycle $cycle: $audit" >&2; violations=$((violations + 1)); }
    if [ "$lost" != 0 ] || [ "$duplicated" != 0 ] || [ "$half" != 0 ]; then
        echo "cycle $cycle: lost $lost, duplicated $duplicated, half-applied $half" >&2
        violations=$((violations + 1))
    fi
    # Each check covers every acknowledgement so far, so the last cycle's counts are the totals.
    total_lost="$lost"
    total_duplicated="$duplicated"
    total_half="$half"
    total_acked="$acked"
    echo "cycle $cycle: acknowledged $acked, lost $lost, duplicated $duplicated, half-applied $half; $ledger; $audit"
}

total_lost=0
total_duplicated=0
total_half=0
total_acked=0
for cycle in $(seq 1 "$cycles"); do
    "$bin" store-load --db "$db" --acks "$acks" --tasks 64 --round 200 >"$work/load.out" 2>&1 &
    pid=$!
    # A random moment between 0.3 s and 1.5 s: during intake, confirmation, commit or start-up.
    sleep "$(awk -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.3f", 0.3 + rand() * 1.2 }')"
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    else
        if ! wait "$pid"; then echo "cycle $cycle: load generator failed: $(cat "$work/load.out")" >&2; violations=$((violations + 1)); fi
    fi
    pid=""
    check "$cycle"
done

echo "crash-test: cycles $cycles, acknowledged commands $total_acked, lost: $total_lost, duplicated: $total_duplicated, half-applied: $total_half, violations: $violations"
[ "$violations" -eq 0 ]
