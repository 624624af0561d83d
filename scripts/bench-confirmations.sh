#!/usr/bin/env bash
# Benchmark (c) of issue 5: wrk -t2 -c64 posting unique, validly signed funding confirmations
# (bank-a, jl1 + HMAC-SHA256) to a release-built gateway, each applied with a durable commit.
# Prints req/s, p50/p99 and the share of non-200 answers, then verifies the ledger.
#
#   scripts/bench-confirmations.sh [--duration SECONDS] [--loans N] [--connections N]
# The issue's figure is at 64 connections (the default); more connections show where the two
# cores saturate.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
duration=8
loans=400000
connections=64
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --loans) loans="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "bench-confirmations: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$duration" =~ ^[0-9]+$ && "$duration" -ge 1 && "$duration" -le 120 ]] || { echo "--duration must be 1..120" >&2; exit 2; }
[[ "$loans" =~ ^[0-9]+$ && "$loans" -ge 1 && "$loans" -le 5000000 ]] || { echo "--loans must be 1..5000000" >&2; exit 2; }
[[ "$connections" =~ ^[0-9]+$ && "$connections" -ge 2 && "$connections" -le 1000 ]] || { echo "--connections must be 2..1000" >&2; exit 2; }
command -v wrk >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

swift build -c release --product jointlend >/dev/null
swift build -c release --product jointlend-bench >/dev/null
work=$(mktemp -d /tmp/bench-conf.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18483
python3 scripts/bench/bench-config.py "$repo" "$work/gateway.json"
.build/release/jointlend-bench confirmations-fixture --config "$work/gateway.json" --data-dir "$work/data" --loans "$loans" --out "$work/fixture.tsv"
# The fixture just wrote a few hundred MB; flush it now, not during the measured run.
[ -n "${JL_BENCH_NO_SYNC:-}" ] || sync
.build/release/jointlend serve --config "$work/gateway.json" --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/serve.out" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
JL_FIXTURE="$work/fixture.tsv" JL_THREADS=2 wrk -t2 -c"$connections" -d"${duration}s" --latency -s scripts/bench/confirmations.lua "http://127.0.0.1:$port" | tee "$work/wrk.txt"
# Where a slow p99 came from: each fsync's and each batch's duration, and the gateway's own
# view of its confirmations (wrk's p99 also counts time outside the gateway, and corrects for
# coordinated omission: one stall of every connection can set it).
curl -s --max-time 5 "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" || true
kill -TERM "$pid"; wait "$pid" || true; pid=""
stage() {  # stage FAMILY [LABEL-PREFIX]: "N (over 10 ms: K, longest <= B s)"
  awk -v fam="$1_bucket{${2:-}" '
    index($0, fam) == 1 { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n = $NF + 0
      if (le == "+Inf") total = n; else { les[++k] = le; counts[k] = n }; if (le == "0.01") ten = n }
    END { if (total == 0) { printf "0"; exit }
      longest = "> " les[k]; for (i = k; i >= 1; i--) if (counts[i] == total) longest = "<= " les[i]
      printf "%d (over 10 ms: %d, longest %s s)", total, total - ten, longest }' "$work/metrics.txt"
}
if [ -s "$work/metrics.txt" ]; then
  echo "store during the run: fsyncs $(stage jointlend_store_wal_sync_duration_seconds), batches $(stage jointlend_store_batch_duration_seconds)"
  echo "gateway-side confirmations: $(stage jointlend_http_request_duration_seconds 'route="/v1/partners/{partnerId}/confirmations",')"
fi
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
p50=$(awk '/^ +50%/ {print $2}' "$work/wrk.txt")
p99=$(awk '/^ +99%/ {print $2}' "$work/wrk.txt")
exhausted=$(awk '/fixture-exhausted/ {print $2}' "$work/wrk.txt")
non200=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/wrk.txt")
non200=${non200:-0}
.build/release/jointlend ledger verify --db "$work/data/jointlend.sqlite"
.build/release/jointlend audit verify --db "$work/data/jointlend.sqlite"
echo "confirmations at ${connections} connections: ${rps} req/s, p50 ${p50}, p99 ${p99}, non-200 ${non200}, fixture exhausted ${exhausted} (target: >= 30000/s, p99 <= 10 ms)"
echo "CONFIRMATIONS $rps $p50 $p99 $non200"
if [ "${exhausted:-0}" != 0 ]; then echo "note: the fixture ran out; rerun with more --loans for a clean figure"; fi
