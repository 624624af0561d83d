#!/usr/bin/env bash
# Exercises the command-line contract: exit statuses and one-line errors naming the field.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product jointlend >/dev/null
JL=.build/debug/jointlend
fail=0
expect() { # expect STATUS "description" command...
  local want=$1 what=$2; shift 2
  set +e; out=$("$@" 2>&1); got=$?; set -e
  if [ "$got" != "$want" ]; then echo "FAIL: $what: exit $got, expected $want: $out"; fail=1; else echo "ok: $what"; fi
  LAST="$out"
}
expect 0 "help" $JL --help
expect 0 "route the example loan" $JL route --config Config/gateway.json --loan Config/examples/loan.json
echo "$LAST" | grep -q '"decision":"planned"' || { echo "FAIL: example loan not planned"; fail=1; }
expect 0 "route from stdin" sh -c "$JL route --config Config/gateway.json --loan - < Config/examples/loan.json"
expect 2 "malformed JSON" sh -c "echo '{\"loanId\":' | $JL route --loan -"
expect 2 "negative amount" sh -c "sed 's/\"amountMinor\": 1000001/\"amountMinor\": -5/' Config/examples/loan.json | $JL route --loan -"
echo "$LAST" | grep -q 'amountMinor' || { echo "FAIL: error does not name amountMinor: $LAST"; fail=1; }
expect 2 "unknown currency" sh -c "sed 's/\"CNY\"/\"XBT\"/' Config/examples/loan.json | $JL route --loan -"
echo "$LAST" | grep -q 'currency' || { echo "FAIL: error does not name currency"; fail=1; }
expect 2 "missing field" sh -c "grep -v termMonths Config/examples/loan.json | $JL route --loan -"
echo "$LAST" | grep -q 'termMonths' || { echo "FAIL: error does not name termMonths"; fail=1; }
expect 2 "bad configuration" sh -c "echo '{}' > /tmp/jl-bad.json && $JL route --config /tmp/jl-bad.json --loan Config/examples/loan.json"
expect 2 "unknown option" $JL route --bogus
expect 2 "unknown command" $JL frobnicate
[ $fail = 0 ] && echo "cli-smoke: all passed" || { echo "cli-smoke: FAILED"; exit 1; }
