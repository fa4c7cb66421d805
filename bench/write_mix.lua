-- wrk script for bench/write_mix.py: one wrk thread (one connection) per user. Line N of the
-- file in WXCRM_BENCH_USERS describes user N (tab-separated):
--   sales     <bearer token> <customer id,lat,lng;...>            客户备案, activity, check-in, check-out
--   customer  <session cookie|csrf token;...>                       POST /h5/api/tickets (sessions in turn)
--   dispatch  <bearer token> <k> <of n> <engineer id,...> <per_page>  list new tickets, dispatch those with id % n == k
-- Every POST carries its own Idempotency-Key, as the H5 pages and the phone apps send one.
-- Each response is timed here (per kind) with CLOCK_MONOTONIC; done() writes
-- "kind<TAB>status<TAB>ms<TAB>error code" lines to WXCRM_BENCH_OUT, then one "#summary" line.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } wm_timespec;
int clock_gettime(int clk_id, wm_timespec *tp);
]]
local ts = ffi.new("wm_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function split(s, sep)
  local out = {}
  for part in string.gmatch(s, "([^" .. sep .. "]+)") do table.insert(out, part) end
  return out
end

local role, token, sites, sessions, k, n, engineers, per_page
local step, seq, pending_kind, started, next_delay, ticket_id = 0, 0, nil, 0, 0, nil
local tried = {}
local salt = tonumber(os.getenv("WXCRM_BENCH_SALT") or "0")  -- one per wrk run: new names, phones and sites
samples = {}  -- global: done() reads it with thread:get

function init(args)
  local i = 0
  for line in io.lines(os.getenv("WXCRM_BENCH_USERS")) do
    if i == id then
      local f = split(line, "\t")
      role = f[1]
      if role == "sales" then
        token, sites = f[2], {}
        for _, s in ipairs(split(f[3], ";")) do table.insert(sites, split(s, ",")) end
      elseif role == "customer" then
        sessions = {}
        for _, s in ipairs(split(f[2], ";")) do table.insert(sessions, split(s, "|")) end
      else
        token, k, n, engineers, per_page = f[2], tonumber(f[3]), tonumber(f[4]), split(f[5], ","), f[6]
      end
    end
    i = i + 1
  end
  math.randomseed(id * 7919 + os.time())
end

-- a unique Chinese company core per request (the collision rule compares normalised names)
local CHARS = {"华", "盛", "兴", "达", "嘉", "恒", "瑞", "丰", "泰", "鑫", "宏", "源", "信", "德", "安", "康", "隆", "昌",
               "永", "和", "佳", "美", "新", "天", "海", "润", "博", "通", "立", "远", "腾", "飞"}
local function encode(v)
  local out = ""
  repeat
    out = out .. CHARS[(v % #CHARS) + 1]
    v = math.floor(v / #CHARS)
  until v == 0
  return out
end

local function post(path, body, headers)
  seq = seq + 1
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("wm-%d-%d-%d-%d", id, seq, os.time(), math.random(1, 1e9))
  return wrk.format("POST", path, headers, body)
end

local function bearer() return {["Authorization"] = "Bearer " .. token} end

local function sales_request()
  step = step + 1
  local phase = (step - 1) % 4
  local site = sites[(math.floor((step - 1) / 4) + salt * 61) % #sites + 1]
  local lat = tonumber(site[2]) + (math.random() - 0.5) * 0.0008
  local lng = tonumber(site[3]) + (math.random() - 0.5) * 0.0008
  if phase == 0 then
    pending_kind = "customer (collision check)"
    local core = "蓝" .. encode(salt) .. "测" .. encode(id) .. "试" .. encode(step)
    return post("/api/v1/mobile/customers", string.format(
      '{"name":"杭州%s科技有限公司","phone":"057%d%02d%06d","address":"杭州市滨江区测试路 %d 号",' ..
      '"site":{"lat":%.6f,"lng":%.6f},"contact_name":"联系人%d","contact_phone":"13%d%02d%06d"}',
      core, salt % 10, id, step, step, lat, lng, step, salt % 10, id, step), bearer())
  elseif phase == 1 then
    pending_kind = "activity"
    return post("/api/v1/activities", string.format(
      '{"subject":"上门拜访 %d","kind":"visit","customer_id":%s,"result":"介绍新品，客户有意向"}', step, site[1]), bearer())
  end
  pending_kind = "check-in"
  return post("/api/v1/checkins", string.format(
    '{"kind":"%s","lat":%.6f,"lng":%.6f,"coord_system":"wgs84","accuracy_m":%d,"customer_id":%s}',
    phase == 2 and "in" or "out", lat, lng, math.random(8, 40), site[1]), bearer())
end

local KINDS = {"repair", "complaint", "consultation", "suggestion"}
local function customer_request()
  step = step + 1
  local s = sessions[(step - 1) % #sessions + 1]
  pending_kind = "ticket (H5)"
  return post("/h5/api/tickets", string.format(
    '{"kind":"%s","product_note":"蓝云商用净水器 WP100","description":"净水器出水变慢，麻烦安排师傅上门 %d"}',
    KINDS[step % #KINDS + 1], step), {["Cookie"] = "session=" .. s[1], ["X-CSRFToken"] = s[2]})
end

local function dispatch_request()
  if ticket_id then
    step = step + 1
    pending_kind = "dispatch"
    local eng = engineers[step % #engineers + 1]
    local body = string.format('{"engineer_ids":[%s],"note":"请尽快联系客户"}', eng)
    local path = "/api/v1/tickets/" .. ticket_id .. "/dispatch"
    tried[ticket_id] = true
    ticket_id = nil
    return post(path, body, bearer())
  end
  pending_kind = "ticket queue (GET)"
  return wrk.format("GET", "/api/v1/tickets?status=submitted&per_page=" .. per_page, bearer())
end

function request()
  started = now_ms()
  if role == "sales" then return sales_request() end
  if role == "customer" then return customer_request() end
  return dispatch_request()
end

function delay()
  local d = next_delay
  next_delay = 0
  return d
end

function response(status, headers, body)
  local ms = now_ms() - started
  local code = status >= 400 and (string.match(body or "", '"code":"([%w_]+)"') or "") or ""
  table.insert(samples, string.format("%s\t%d\t%.3f\t%s", pending_kind, status, ms, code))
  if role == "dispatch" and pending_kind == "ticket queue (GET)" then
    -- keys are sorted: the ticket's own id is the one followed by "in_warranty"
    for tid in string.gmatch(body or "", '"id":(%d+),"in_warranty"') do
      if tonumber(tid) % n == k and not tried[tid] then
        ticket_id = tid
        break
      end
    end
    if not ticket_id then next_delay = 100 end  -- nothing new for me: look again in 100 ms
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WXCRM_BENCH_OUT"), "w")
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("samples")) do out:write(line, "\n") end
  end
  local e = summary.errors
  out:write(string.format("#summary\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", summary.duration, summary.requests, e.connect, e.read,
    e.write, e.status, e.timeout))
  out:close()
end
