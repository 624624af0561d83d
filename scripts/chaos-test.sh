#!/usr/bin/env bash
# Chaos test: three simulated partners (20% 5xx, 10% timeouts, 5% lost callbacks, 5% duplicate
# callbacks, 10% declines), LOANS approved loans, a fast-forwarded clock past the 2-hour deadline.
# Then: every loan final by its deadline, no tranche funded twice, no funded tranche in an
# unfunded loan, `jointlend ledger verify` and `audit verify` pass. Prints a summary line and the
# approval→funded latency (p50/p99) with partners answering in 10 ms.
#   scripts/chaos-test.sh [LOANS=10000] [SEED] [DOWN]   DOWN: partner ids (comma-separated) kept
#   unreachable for the whole run, so their tranches can only end at the deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
LOANS="${1:-10000}"
SEED="${2:-20261121}"
DOWN="${3:-}"
KEEP="$(mktemp -d /tmp/jl-chaos.XXXXXX)"
trap 'rm -rf "$KEEP"' EXIT
swift build --build-tests 2>&1 | grep -E "error|warning:" && { echo "build failed or has warnings"; exit 1; } || true
echo "== chaos: $LOANS loans, seed $SEED${DOWN:+, partners down: $DOWN}"
status=0
JL_CHAOS_LOANS="$LOANS" JL_CHAOS_SEED="$SEED" JL_CHAOS_DARK="$DOWN" JL_CHAOS_KEEP="$KEEP" JL_LATENCY_LOANS="${JL_LATENCY_LOANS:-1000}" \
    swift test --skip-build --filter 'ChaosTests' >"$KEEP/test.log" 2>&1 || status=$?
grep -E "^chaos:|^latency:|✘|Test run" "$KEEP/test.log" || true
if [ "$status" -ne 0 ] || ! grep -q "Test run with .* passed" "$KEEP/test.log"; then
    echo "chaos test failed (exit $status); last lines:"; tail -40 "$KEEP/test.log"; exit 1
fi
DB="$(sed -n 's/^chaos: database kept at //p' "$KEEP/test.log" | tail -1)"
[ -n "$DB" ] && [ -f "$DB" ] || { echo "chaos database not found"; exit 1; }
echo "== jointlend ledger verify / audit verify on $DB"
swift run -q jointlend ledger verify --db "$DB"
swift run -q jointlend audit verify --db "$DB"
rm -rf "$(dirname "$DB")"
echo "chaos test passed"
