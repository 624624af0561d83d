#!/usr/bin/env bash
# The gateway under a low open-files limit: it lowers connectionsMax to leave descriptors free,
# answers connections past it with 503, and stays up (it used to run out of descriptors, and
# the runtime then aborted the process). Usage: scripts/fd-limit-test.sh [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-400}
swift build --product jointlend >/dev/null
JL=${JL_BIN:-.build/debug/jointlend}
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
prlimit --nofile="$limit:$limit" "$JL" serve --config Config/gateway.json --data-dir "$work/data" --listen "127.0.0.1:$port" 2>"$work/serve.log" >/dev/null &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
result=$(python3 - "$port" "$limit" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(limit + 200):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    conns.append(s)
ok = refused = silent = 0
for s in conns:
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    except OSError:
        pass
for s in conns:
    try:
        data = s.recv(4096)
        if data.startswith(b"HTTP/1.1 200"): ok += 1
        elif data.startswith(b"HTTP/1.1 503"): refused += 1
        else: silent += 1
    except OSError:
        silent += 1
print(ok, refused, silent)
PY
)
sleep 1.5  # the runtime's worker check runs about once a second
read -r ok refused silent <<<"$result"
echo "fd-limit: limit $limit, $((limit + 200)) connections: $ok answered 200, $refused answered 503, $silent without an answer"
kill -0 "$pid" 2>/dev/null || { echo "fd-limit: FAILED, the gateway died"; cat "$work/serve.log" | tail -5; exit 1; }
grep -q "connectionsMax lowered" "$work/serve.log" || { echo "fd-limit: FAILED, no 'connectionsMax lowered' line"; exit 1; }
[ "$silent" = 0 ] && [ "$refused" -gt 0 ] && [ "$ok" -gt 0 ] || { echo "fd-limit: FAILED"; exit 1; }
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "fd-limit: FAILED, not serving after the flood"; exit 1; }
echo "fd-limit: passed"
