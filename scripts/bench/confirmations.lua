-- wrk script: each thread sends its own share of pre-signed, unique funding confirmations
-- (lines of PATH \t HEADER: VALUE|... \t BODY from `jointlend-bench confirmations-fixture`),
-- each exactly once. When a thread runs out it sends GET /healthz, counted apart.
-- No response() callback: wrk would build a Lua table of every response's headers for it,
-- costing the load generator more than some of what it measures. Non-2xx answers are
-- counted by wrk itself ("Non-2xx or 3xx responses"), which the calling script reads.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("JL_FIXTURE")
  local nthreads = tonumber(os.getenv("JL_THREADS") or "2")
  requests = {}
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      local h = { ["Content-Type"] = "application/json" }
      for field in headers:gmatch("[^|]+") do
        local name, value = field:match("^([^:]+): (.*)$")
        h[name] = value
      end
      table.insert(requests, wrk.format("POST", path, h, body))
    end
    n = n + 1
  end
  index = 0
  exhausted = 0
end

function request()
  index = index + 1
  local r = requests[index]
  if r == nil then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  return r
end

function done(summary, latency, requests)
  local exhausted_total = 0
  for _, t in ipairs(threads) do
    exhausted_total = exhausted_total + t:get("exhausted")
  end
  io.write(string.format("fixture-exhausted %d\n", exhausted_total))
end
