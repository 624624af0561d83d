#!/usr/bin/env bash
# Contract checks for every partner folder under Contracts/: structure (lint), the offline
# contract verification (outbound byte-identical or verifying, inbound accepted and every
# single-field mutation rejected, mappings round-trip), the contract tests, and provider
# verification of the gateway with the official Pact verifier (scripts/pact/verify.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build 2>&1 | grep -E "error|warning:" && { echo "build failed or has warnings"; exit 1; } || true
BIN="$(swift build --show-bin-path)/jointlend"
echo "== jointlend contracts lint"
"$BIN" contracts lint
# A broken copy: one run must report the partner.json problem and both missing pact files.
broken="$(mktemp -d)"; trap 'rm -rf "$broken"' EXIT
cp -r Contracts/bank-a "$broken/bank-d"; rm "$broken"/bank-d/pacts/*.json
sed -i 's/"partnerId": *"bank-a"/"partnerId": "bank-d"/; s/"currency": *"currency"/"currencyy": "currency"/' "$broken/bank-d/partner.json"
if out="$("$BIN" contracts lint --dir "$broken")"; then echo "lint passed a broken contract"; exit 1; fi
for want in 'fieldMappings.currencyy' 'jointlend-gateway-bank-d.json: missing' 'bank-d-jointlend-gateway.json: missing'; do
  grep -qF "$want" <<<"$out" || { echo "lint did not report: $want"; echo "$out"; exit 1; }
done
echo "broken copy: every problem reported in one run"
echo "== jointlend contracts verify"
"$BIN" contracts verify | tail -1
echo "== contract tests"
swift test --filter ContractTests 2>&1 | grep -E "✘|Test run" 
swift test --skip-build --filter ContractTests 2>&1 | grep -q "Test run with .* passed" || { echo "contract tests failed"; exit 1; }
echo "== pact provider verification"
bash scripts/pact/verify.sh
