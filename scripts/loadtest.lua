-- wrk script for every phase of scripts/loadtest.sh: every connection cycles through the
-- keys in $KEYS_FILE ("class key" per line) and checks each response
-- against the key's class: valid -> 200, limited -> 200 or 429,
-- invalid -> 401. With one connection per thread and no pipelining, a
-- thread has exactly one request outstanding, so a response belongs to the
-- last request built. (wrk may call request() once more than it sends, so
-- a queue of pending requests would drift out of step.) With more
-- connections than threads, use keys of one class only.
--
-- If $PORTS lists ports ("8081 8082"), thread i sends all its requests
-- to 127.0.0.1 on the i-th of them (in turn), so that one wrk process
-- loads several servers with the same script.
local threads = {}
local ports = {}
for p in (os.getenv("PORTS") or ""):gmatch("%d+") do
  table.insert(ports, p)
end

function setup(thread)
  thread:set("id", #threads + 1)
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[#threads % #ports + 1])[1]
  end
  table.insert(threads, thread)
end

function init(args)
  keys, classes = {}, {}
  for line in io.lines(os.getenv("KEYS_FILE")) do
    local class, key = line:match("^(%S+) (%S+)$")
    if class then
      table.insert(classes, class)
      table.insert(keys, key)
    end
  end
  i = id % #keys
  current = nil
  counts = {}
  unexpected = 0
end

function request()
  i = i % #keys + 1
  current = classes[i]
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. keys[i] })
end

local allowed = {
  valid = { [200] = true },
  limited = { [200] = true, [429] = true },
  invalid = { [401] = true },
}

function response(status, headers, body)
  local class = current
  local k = class .. " " .. status
  counts[k] = (counts[k] or 0) + 1
  if not allowed[class][status] then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local total, bad = {}, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("unexpected")
    local c = t:get("counts")
    for k, v in pairs(c) do
      total[k] = (total[k] or 0) + v
    end
  end
  local names = {}
  for k in pairs(total) do table.insert(names, k) end
  table.sort(names)
  for _, k in ipairs(names) do
    io.write(string.format("responses %-14s %d\n", k, total[k]))
  end
  io.write(string.format("unexpected statuses: %d\n", bad))
end
