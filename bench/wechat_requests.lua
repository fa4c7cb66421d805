-- wrk script: every request is a different pre-signed, pre-encrypted message (unique MsgId).
-- The file holds one "query<TAB>body" line per message; each thread takes its own slice.
local lines = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("WXCRM_BENCH_REQUESTS")
  local nthreads = tonumber(os.getenv("WXCRM_BENCH_THREADS") or "2")
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      table.insert(lines, {string.sub(line, 1, tab - 1), string.sub(line, tab + 1)})
    end
    i = i + 1
  end
end

function request()
  counter = counter + 1
  local item = lines[((counter - 1) % #lines) + 1]
  return wrk.format("POST", "/wechat/callback?" .. item[1], {["Content-Type"] = "text/xml"}, item[2])
end
