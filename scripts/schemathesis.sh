#!/usr/bin/env bash
# Runs schemathesis (PyPI) against Contracts/openapi.json and a live gateway on loopback, with
# hooks that sign requests as the platform and as bank-a. Fails on any failure it reports.
#
#   scripts/schemathesis.sh [--max-time SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
max_time=60
if [ "${1:-}" = "--max-time" ]; then max_time="$2"; fi
[[ "$max_time" =~ ^[0-9]+$ && "$max_time" -ge 5 && "$max_time" -le 3600 ]] || { echo "--max-time must be 5..3600" >&2; exit 2; }
venv=.venv-schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis>=4.1,<5"
fi
swift build --product jointlend >/dev/null
work=$(mktemp -d /tmp/jl-schemathesis.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18490
.build/debug/jointlend serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/serve.out" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
set +e
JL_REPO="$repo" PYTHONPATH="$repo/scripts/schemathesis" SCHEMATHESIS_HOOKS=hooks \
  "$venv/bin/schemathesis" run Contracts/openapi.json --url "http://127.0.0.1:$port" \
  --checks all --exclude-checks positive_data_acceptance,ignored_auth \
  --max-time "$max_time" --workers 2 --seed 20261121 --suppress-health-check all 2>&1 | tee "$work/st.txt"
status=${PIPESTATUS[0]}
set -e
kill -TERM "$pid"; wait "$pid"; serve_status=$?; pid=""
cp "$work/serve.log" /tmp/jl-schemathesis-serve.log
if grep -q '"level":"critical"' "$work/serve.log"; then echo "schemathesis: the gateway logged a critical error"; exit 1; fi
[ "$serve_status" = 0 ] || { echo "schemathesis: the gateway did not exit cleanly ($serve_status)"; exit 1; }
exit "$status"
