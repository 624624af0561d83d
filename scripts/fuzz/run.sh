#!/usr/bin/env bash
# Fuzzes the HTTP request parser with libFuzzer for SECONDS (default 60).
# Builds scripts/fuzz/FuzzHTTPRequestParser.swift with the parser's own sources, so the target
# needs no package build. Exits non-zero when libFuzzer finds a crash (the input is saved in
# .build/fuzz/artifacts/). Prints the number of executions.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz/run.sh SECONDS" >&2; exit 2; }

out=.build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"
sources=(
  Sources/HTTP/HTTPRequestParser.swift Sources/HTTP/HTTPHeaders.swift Sources/HTTP/HTTPMethod.swift Sources/HTTP/ByteScan.swift
  Sources/HTTP/HTTPParseError.swift Sources/HTTP/HTTPStatus.swift Sources/HTTP/Request.swift
)
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name HTTPFuzz \
  "${sources[@]}" scripts/fuzz/FuzzHTTPRequestParser.swift -o "$out/http-parser-fuzz" 2>&1 \
  | grep -v "Cannot export local symbol" || true
[ -x "$out/http-parser-fuzz" ] || { echo "fuzz target did not build" >&2; exit 1; }

# Seeds: valid, pipelined and malformed requests.
printf 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n' > "$out/corpus/seed-get"
printf 'POST /v1/loans HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' > "$out/corpus/seed-pipelined"
printf 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc' > "$out/corpus/seed-smuggle"
printf 'GET / HTTP/1.1\nHost: a\r\n X: folded\r\n\r\n' > "$out/corpus/seed-bad"

set +e
"$out/http-parser-fuzz" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" > "$out/last-run.log" 2>&1
status=$?
set -e
executions=$(grep -E "stat::number_of_executed_units" "$out/last-run.log" | awk '{print $2}')
echo "fuzz: ${seconds}s, executions: ${executions:-unknown}, exit status: $status"
if [ "$status" -ne 0 ]; then
  grep -E "ERROR|Fatal|precondition|SUMMARY|Test unit written" "$out/last-run.log" | head -20 >&2
  exit 1
fi
