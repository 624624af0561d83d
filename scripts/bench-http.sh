#!/usr/bin/env bash
# HTTP benchmark: wrk -t2 -c64 against (a) nginx answering a fixed 200 and (b) /healthz of our
# server, then the resident memory of our server holding 10,000 idle keep-alive connections.
# Everything listens on 127.0.0.1 only. Installs wrk and nginx with apt-get when missing.
#
#   scripts/bench-http.sh [--duration SECONDS] [--rounds N] [--idle-connections N] [--target http|gateway]
#
# The machine is shared, so a and b run alternately for --rounds rounds (default 3) and each
# keeps its best round (highest req/s, with that round's latencies).
# --target gateway (default) runs `jointlend serve` (release build) with a fresh database;
# --target http builds a minimal /healthz server straight from Sources/HTTP (a sync
# route, like the gateway's). (c) then posts signed, durable confirmations (scripts/bench-confirmations.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
rounds=3
idle_connections=10000
target=gateway
confirmation_loans=400000
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --idle-connections) idle_connections="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --target) target="$2"; shift 2 ;;
    --confirmation-loans) confirmation_loans="$2"; shift 2 ;;
    *) echo "bench-http: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$duration" =~ ^[0-9]+$ && "$duration" -ge 1 && "$duration" -le 120 ]] || { echo "bench-http: --duration must be 1..120" >&2; exit 2; }
[[ "$rounds" =~ ^[0-9]+$ && "$rounds" -ge 1 && "$rounds" -le 10 ]] || { echo "bench-http: --rounds must be 1..10" >&2; exit 2; }
[[ "$idle_connections" =~ ^[0-9]+$ && "$idle_connections" -le 50000 ]] || { echo "bench-http: --idle-connections must be 0..50000" >&2; exit 2; }

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
fi
# Server and client are separate processes: each needs N descriptors plus a margin.
wanted_fds=$(( idle_connections + 1024 ))
hard_fds=$(ulimit -Hn)
if [ "$hard_fds" != unlimited ] && [ "$hard_fds" -lt "$wanted_fds" ]; then
  echo "bench-http: need $wanted_fds open files, hard limit is $hard_fds" >&2; exit 2
fi
ulimit -n "$wanted_fds"

work=$(mktemp -d /tmp/bench-http.XXXXXX)
nginx_port=18481
server_port=18482
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# (a) nginx: 2 workers, fixed 200, no logging, unlimited keep-alive requests (as our server).
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 200 "ok"; }
  }
}
CONF
nginx -c "$work/nginx.conf"

# (b) our server.
case "$target" in
  http)
    mkdir -p "$work/server" .build/bench-http
    cat > "$work/server/main.swift" <<'SWIFT'
import Glibc
let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8080
var configuration = HTTPServer.Configuration()
configuration.port = port
configuration.connectionsMax = 60_000
configuration.idleTimeoutMilliseconds = 300_000
var router = Router()
router.onSync(.GET, "/healthz") { _, _ in .text("ok") }
let server = HTTPServer(configuration: configuration, responder: try router.freeze())
try server.start()
server.runUntilTerminated()
SWIFT
    cat > "$work/server/module.modulemap" <<MAP
module CPosix { header "$PWD/Sources/CPosix/include/CPosix.h" export * }
MAP
    clang -O2 -c Sources/CPosix/CPosix.c -I Sources/CPosix/include -o "$work/server/CPosix.o"
    repo=$PWD
    # From the scratch directory, so no compiler by-products land in the work tree.
    (cd "$work/server" && swiftc -O -wmo -module-name HTTPBench -I "$work/server" "$repo"/Sources/HTTP/*.swift \
      main.swift CPosix.o -o "$repo/.build/bench-http/http-bench-server")
    # setsid: its own session, hence its own scheduler autogroup, as daemonised nginx has;
    # otherwise it would share one CPU share with wrk.
    setsid .build/bench-http/http-bench-server "$server_port" 2>"$work/server.log" &
    pids+=($!)
    ;;
  gateway)
    swift build -c release --product jointlend >/dev/null
    setsid .build/release/jointlend serve --listen "127.0.0.1:$server_port" --data-dir "$work/gateway-data" >/dev/null 2>"$work/server.log" &
    pids+=($!)
    ;;
  *) echo "bench-http: --target must be http or gateway" >&2; exit 2 ;;
esac
server_pid=${pids[-1]}
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$server_port/healthz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$server_port/healthz" >/dev/null || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# CPU ticks (user + system) of the given processes: a measure of cost per request that the
# other load on a shared machine disturbs far less than req/s.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") ))
  done
  echo "$total"
}
nginx_workers=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
ticks_per_second=$(getconf CLK_TCK)

# wrk's --latency output: "Requests/sec: N", "N requests in" and a distribution with "50%"
# and "99%" lines. Prints req/s, p50, p99 and CPU microseconds per request.
run_wrk() {
  local url=$1; shift
  wrk -t2 -c64 -d1s "$url" >/dev/null  # warm-up
  local before after
  before=$(cpu_ticks "$@")
  wrk -t2 -c64 -d"${duration}s" --latency "$url" > "$work/wrk.out"
  after=$(cpu_ticks "$@")
  local rps p50 p99 requests
  rps=$(awk '/Requests\/sec:/ {print $2}' "$work/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  echo "$rps $p50 $p99 $(awk -v t=$(( after - before )) -v hz="$ticks_per_second" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')"
}
a_rps=0; b_rps=0
for round in $(seq "$rounds"); do
  # shellcheck disable=SC2086
  read -r rps p50 p99 cpu < <(run_wrk "http://127.0.0.1:$nginx_port/" $nginx_workers)
  echo "round $round: nginx $rps req/s p50 $p50 p99 $p99 cpu/request ${cpu}us" >&2
  if awk -v x="$rps" -v y="$a_rps" 'BEGIN { exit !(x > y) }'; then a_rps=$rps; a_p50=$p50; a_p99=$p99; a_cpu=$cpu; fi
  read -r rps p50 p99 cpu < <(run_wrk "http://127.0.0.1:$server_port/healthz" "$server_pid")
  echo "round $round: $target $rps req/s p50 $p50 p99 $p99 cpu/request ${cpu}us" >&2
  if awk -v x="$rps" -v y="$b_rps" 'BEGIN { exit !(x > y) }'; then b_rps=$rps; b_p50=$p50; b_p99=$p99; b_cpu=$cpu; fi
done
ratio=$(awk -v a="$a_rps" -v b="$b_rps" 'BEGIN { printf "%.3f", b / a }')

# Resident memory with N idle keep-alive connections, each having made one request.
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
idle_rss_kb=n/a
if [ "$idle_connections" -gt 0 ]; then
  idle_rss_kb=$(python3 - "$server_port" "$idle_connections" "$server_pid" <<'PY'
import socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
sockets = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    sockets.append(s)
for s in sockets:
    s.settimeout(10)
    data = b""
    # The minimal server answers "ok", the gateway {"status":"ok"}.
    while not (b"\r\n\r\n" in data and (data.endswith(b"ok") or data.endswith(b'"ok"}'))):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed early")
        data += chunk
time.sleep(1)
with open(f"/proc/{pid}/status") as status:
    rss = next(line.split()[1] for line in status if line.startswith("VmRSS"))
print(rss)
for s in sockets:
    s.close()
PY
)
fi

printf '\n%-32s %12s %10s %10s %14s\n' "best of $rounds (wrk -t2 -c64 ${duration}s)" "req/s" "p50" "p99" "CPU us/req"
printf '%-32s %12s %10s %10s %14s\n' "a: nginx fixed 200" "$a_rps" "$a_p50" "$a_p99" "$a_cpu"
printf '%-32s %12s %10s %10s %14s\n' "b: $target /healthz" "$b_rps" "$b_p50" "$b_p99" "$b_cpu"
printf 'ratio b/a: %s (target >= 0.9)\n' "$ratio"
printf 'server RSS after load: %s KiB; with %s idle keep-alive connections: %s KiB (target <= 102400)\n' \
  "$rss_kb" "$idle_connections" "$idle_rss_kb"
# (c) signed, durable funding confirmations through the whole gateway (its own run, fresh data).
c_line=n/a
if [ "$confirmation_loans" -gt 0 ]; then
  kill "$server_pid" 2>/dev/null || true
  c_line=$(bash scripts/bench-confirmations.sh --duration "$duration" --loans "$confirmation_loans" | tee "$work/conf.txt" | awk '/^CONFIRMATIONS/ {print $2, $3, $4, $5}')
  read -r c_rps c_p50 c_p99 c_non200 <<<"$c_line"
  printf '%-32s %12s %10s %10s %14s
' "c: signed confirmations" "$c_rps" "$c_p50" "$c_p99" "non-200: $c_non200" >&2
  printf 'ratio c/a: %s (targets: c >= 30000/s, p99 <= 10ms)\n' "$(awk -v a="$a_rps" -v c="$c_rps" 'BEGIN { printf "%.3f", c / a }')"
  # Where a slow p99 came from (fsyncs, batches, the gateway's own view): see bench-confirmations.sh.
  grep -E '^(store during the run|gateway-side confirmations):' "$work/conf.txt" >&2 || true
fi
printf '{"nginx_cpu_us_per_request":%s,"server_cpu_us_per_request":%s,' "$a_cpu" "$b_cpu"
printf '"nginx_rps":%s,"server_rps":%s,"ratio":%s,"nginx_p50":"%s","nginx_p99":"%s","server_p50":"%s","server_p99":"%s","idle_connections":%s,"idle_rss_kib":"%s"}\n' \
  "$a_rps" "$b_rps" "$ratio" "$a_p50" "$a_p99" "$b_p50" "$b_p99" "$idle_connections" "$idle_rss_kb"
