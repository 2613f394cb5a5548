-- wrk script of the service benchmark (bench/README.md). One script for
-- every row, driven by environment variables:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_PATH    request path
--   BENCH_AUTH    Authorization header value (optional)
--   BENCH_TYPE    Content-Type of the body (optional)
--   BENCH_BODY    the body; in refresh mode, "%s" stands for the token
--   BENCH_TOKENS  refresh mode: a file of refresh tokens, one per line, at
--                 least one per connection plus two per thread (wrk asks a
--                 thread for one request more than it sends). Each thread
--                 takes its share; every 200 answer's new refresh_token goes
--                 back into the thread's queue, so each family rotates as a
--                 client would.
--   BENCH_PROOFS  DPoP mode: a file of DPoP proofs, one per line, each used
--                 once (a proof is accepted once); each thread takes its
--                 share and sends the next one in a DPoP header.
-- done() prints one JSON line with the figures bench.py reads.
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local tokens_file = os.getenv("BENCH_TOKENS")
local proofs_file = os.getenv("BENCH_PROOFS")
local headers = {}
if os.getenv("BENCH_AUTH") then headers["Authorization"] = os.getenv("BENCH_AUTH") end
if os.getenv("BENCH_TYPE") then headers["Content-Type"] = os.getenv("BENCH_TYPE") end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Refresh mode: the main state reads the file once and hands each thread its
-- share as one newline-joined string (wrk threads share no Lua state).
local function share(count, index, file)
  local lines = {}
  for line in io.lines(file) do
    if line ~= "" then table.insert(lines, line) end
  end
  local mine = {}
  for i = index + 1, #lines, count do table.insert(mine, lines[i]) end
  return table.concat(mine, "\n")
end

local static = nil
local queue, head, tail = {}, 1, 0
-- Refresh mode: the request up to its Content-Length, and the body around
-- the token, put together once (wrk.format per request cost the load
-- generator more CPU than the service's own parsing of the request, on the
-- same two cores).
local head_text, body_before, body_after = nil, nil, nil
starved = 0 -- a global: done() reads it with thread:get

function init(args)
  local file = tokens_file or proofs_file
  if file then
    for t in string.gmatch(share(tonumber(os.getenv("BENCH_THREADS")), id, file), "[^\n]+") do
      tail = tail + 1
      queue[tail] = t
    end
    if tokens_file then
      local at = string.find(body, "%s", 1, true)
      assert(at, "BENCH_BODY must hold %s where the refresh token goes")
      body_before, body_after = string.sub(body, 1, at - 1), string.sub(body, at + 2)
      local lines = { method .. " " .. path .. " HTTP/1.1" }
      for name, value in pairs(wrk.headers) do
        if headers[name] == nil then table.insert(lines, name .. ": " .. value) end
      end
      for name, value in pairs(headers) do table.insert(lines, name .. ": " .. value) end
      head_text = table.concat(lines, "\r\n") .. "\r\nContent-Length: "
    end
  else
    static = wrk.format(method, path, headers, body)
  end
end

function request()
  if static then return static end
  if head > tail then
    -- every family of this thread is in flight (or was lost to a failed
    -- answer): counted, and bench.py refuses a run that starved.
    starved = starved + 1
    return wrk.format("GET", "/healthz")
  end
  local t = queue[head]
  queue[head] = nil
  head = head + 1
  if proofs_file then
    headers["DPoP"] = t
    return wrk.format(method, path, headers, body)
  end
  local b = body_before .. t .. body_after
  return head_text .. #b .. "\r\n\r\n" .. b
end

if tokens_file then
  function response(status, hdrs, resp)
    if status == 200 then
      -- serde_json writes no blanks: a plain search, the pattern as a fallback
      local t = nil
      local _, stop = string.find(resp, '"refresh_token":"', 1, true)
      if stop then
        local close = string.find(resp, '"', stop + 1, true)
        if close and close > stop + 1 then t = string.sub(resp, stop + 1, close - 1) end
      else
        t = string.match(resp, '"refresh_token"%s*:%s*"([^"]+)"')
      end
      if t then
        tail = tail + 1
        queue[tail] = t
      end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local starved_total = 0
  for _, thread in ipairs(threads) do
    starved_total = starved_total + (thread:get("starved") or 0)
  end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,'
      .. '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,'
      .. '"starved":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, starved_total, latency:percentile(50), latency:percentile(99), latency.max))
end
