-- wrk script: GET the material page as a phone browser, no cookie (every request a new viewer
-- under the sharer's token: a node, a visit), the heaviest case for visit recording.
local path = os.getenv("WXCRM_BENCH_PATH")
function request()
  return wrk.format("GET", path, {["User-Agent"] = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile Safari/537.36"})
end
