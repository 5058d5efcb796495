-- wrk script of bench/lookup_http.py: GET request paths picked at random from a file.
--
--   wrk ... -s bench/lookup_http.lua URL -- PATHS_FILE [TOKEN]
--
-- Each line of PATHS_FILE is "h PATH" (sent with "Authorization: Bearer TOKEN") or
-- "- PATH" (sent without: the path carries ?token= itself, or needs no token).
-- Reading the list from a file keeps tens of thousands of paths out of the script's
-- own constants. Every response is counted: non-2xx (an error, also 3xx, which wrk's
-- own summary counts as success), and 2xx with a body (a name) or without (unknown
-- number), so that the run shows it got the answers it was meant to get.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  auth = {}
  local bearer = nil
  if args[2] ~= nil and args[2] ~= "" then
    bearer = { ["Authorization"] = "Bearer " .. args[2] }
  end
  for line in io.lines(args[1]) do
    local mark, path = line:match("^(%S) (.+)$")
    if path ~= nil then
      paths[#paths + 1] = path
      auth[#auth + 1] = (mark == "h") and bearer or false
    end
  end
  -- Each thread its own sequence: two threads walking the same one would ask the same
  -- numbers at the same moments.
  math.randomseed(20261201 + id)
  bad, named, empty = 0, 0, 0
end

function request()
  local i = math.random(#paths)
  local h = auth[i]
  if h then
    return wrk.format("GET", paths[i], h)
  end
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  elseif body ~= nil and #body > 0 then
    named = named + 1
  else
    empty = empty + 1
  end
end

function done(summary, latency, requests)
  local b, n, e = 0, 0, 0
  for _, thread in ipairs(threads) do
    b = b + thread:get("bad")
    n = n + thread:get("named")
    e = e + thread:get("empty")
  end
  io.write(string.format("lookup_http: non-2xx %d, 2xx with a body %d, 2xx empty %d\n", b, n, e))
end
