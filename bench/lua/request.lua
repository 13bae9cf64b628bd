-- One wrk script for every row; bench/wrk.py configures it through environment variables:
--   BENCH_METHOD      GET, POST or DELETE
--   BENCH_BODY_FILE   request body (POST)
--   BENCH_API_KEY     sent as X-API-Key
--   BENCH_PATHS_FILE  optional: one path per line, used in turn (acknowledging distinct events)
--   BENCH_BODIES_FILE optional: one body per line, used in turn (batch acknowledgements)
-- done() prints one line, "BENCH_JSON {...}", that bench/wrk.py parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE") or ""
local api_key = os.getenv("BENCH_API_KEY") or ""
local paths_file = os.getenv("BENCH_PATHS_FILE") or ""
local bodies_file = os.getenv("BENCH_BODIES_FILE") or ""

wrk.method = method
if body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
if api_key ~= "" then
  wrk.headers["X-API-Key"] = api_key
end

if bodies_file ~= "" then
  local bodies = {}
  for line in io.lines(bodies_file) do
    if line ~= "" then bodies[#bodies + 1] = line end
  end
  wrk.headers["Content-Type"] = "application/json"
  local i = 0
  function request()
    i = i + 1
    if i > #bodies then i = 1 end
    return wrk.format(nil, nil, nil, bodies[i])
  end
elseif paths_file ~= "" then
  local paths = {}
  for line in io.lines(paths_file) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  local i = 0
  function request()
    i = i + 1
    if i > #paths then i = 1 end
    return wrk.format(nil, paths[i])
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
