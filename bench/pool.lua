-- wrk script: replays a pool of pre-signed requests (written by bench_presign) and checks every response.
--
--   wrk ... -s bench/pool.lua URL -- POOL_FILE BATCH CHECK [STOP_RECORDS]
--
-- POOL_FILE     requests as "<length>\n<bytes>", cycled in order (each thread starts at its own offset)
-- BATCH         records per request (1 for PutRecord, 500 for PutRecords): what a 200 answer stores
-- CHECK         "body": a 200 must also carry the operation's answer (SequenceNumber for PutRecord,
--               FailedRecordCount for PutRecords, whose failed entries are counted); "status": the status alone
--               (for the no-op ceiling, which answers "{}")
-- STOP_RECORDS  optional: the run ends once a thread's requests stored this many records, or at the first bad
--               answer (for filling a server)
--
-- Prints one line "BENCH_RESULT {json}" from done(): counts of 200 and non-200 answers, records stored, failed
-- entries, socket errors and latency percentiles in microseconds. The caller declares a run with any non-200
-- answer, failed entry or socket error invalid.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_index", thread_count)
  table.insert(threads, thread)
end

local pool = {}
local pool_size = 0
local next_index = 0
local batch = 1
local check_body = true
local stop_records = 0

ok = 0
bad = 0
records = 0
failed_entries = 0
first_bad = ""

local function load_pool(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #text do
    local nl = string.find(text, "\n", pos, true)
    local len = tonumber(string.sub(text, pos, nl - 1))
    pool_size = pool_size + 1
    pool[pool_size] = string.sub(text, nl + 1, nl + len)
    pos = nl + 1 + len
  end
  assert(pool_size > 0, "empty request pool " .. path)
end

function init(args)
  load_pool(args[1])
  batch = tonumber(args[2])
  check_body = args[3] == "body"
  stop_records = tonumber(args[4] or "0")
  next_index = ((thread_index or 1) - 1) * 7919 % pool_size
end

function request()
  next_index = next_index + 1
  if next_index > pool_size then next_index = 1 end
  return pool[next_index]
end

local stopping = false

-- thread:stop() ends this thread's loop only: wrk's main thread would still sleep out the whole -d duration. SIGINT
-- is what wrk handles as "end the run now" (results and done() as usual), so the thread sends it to its own process.
local function stop_run()
  stopping = true
  wrk.thread:stop()
  local have_ffi, ffi = pcall(require, "ffi")
  if have_ffi then
    pcall(ffi.cdef, "int kill(int pid, int sig); int getpid(void);")
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end

local function note_bad(status, body)
  bad = bad + 1
  if first_bad == "" then
    first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
  -- A fill with a bad answer is invalid already and might never reach its target: end it rather than time out.
  if stop_records > 0 and not stopping then
    stop_run()
  end
end

function response(status, headers, body)
  if status ~= 200 then
    note_bad(status, body)
    return
  end
  if check_body then
    if batch == 1 then
      if not string.find(body, "\"SequenceNumber\"", 1, true) then
        note_bad(status, body)
        return
      end
    else
      local failed = string.match(body, "\"FailedRecordCount\"%s*:%s*(%d+)")
      if not failed then
        note_bad(status, body)
        return
      end
      failed_entries = failed_entries + tonumber(failed)
      records = records - tonumber(failed)
    end
  end
  ok = ok + 1
  records = records + batch
  if stop_records > 0 and records >= stop_records and not stopping then
    stop_run()
  end
end

local function json_string(s)
  s = string.gsub(s, "[%c\"\\]", function(c) return string.format("\\u%04x", string.byte(c)) end)
  return "\"" .. s .. "\""
end

function done(summary, latency, requests)
  local t = {ok = 0, bad = 0, records = 0, failed_entries = 0}
  local first = ""
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
    if first == "" then first = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"duration_us\":%d,\"requests\":%d,\"ok\":%d,\"bad\":%d,\"records\":%d,\"failed_entries\":%d," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}," ..
    "\"latency_us\":{\"p50\":%d,\"p90\":%d,\"p99\":%d,\"max\":%d,\"mean\":%.1f},\"first_bad\":%s}\n",
    summary.duration, summary.requests, t.ok, t.bad, t.records, t.failed_entries,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    json_string(first)))
end
