#!/usr/bin/env bash
# Provider verification with the official Pact verifier (pact-python from PyPI; the verifier is
# the Pact FFI library shipped in its wheel and runs offline). Starts `jointlend serve --test-mode`
# on a free port with a fresh data directory, installs pact-python in a venv, replays every
# partner's confirmation pact, and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${PACT_VENV:-.build/pact-venv}"
WORK="$(mktemp -d /tmp/jl-pact.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import pact" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "pact-python>=3,<5"
fi

swift build --product jointlend 2>&1 | grep -E "error|warning:" && { echo "build failed"; exit 1; } || true
BIN="$(swift build --show-bin-path)/jointlend"
"$BIN" serve --test-mode --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
done
URL="$(sed -n 's/^jointlend listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/serve.out")"
[ -n "$URL" ] || { echo "gateway did not start"; cat "$WORK/serve.log"; exit 1; }
echo "== pact provider verification against $URL"
"$VENV/bin/python" scripts/pact/verify.py "$URL" Contracts
