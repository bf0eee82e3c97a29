-- The benchmark runner: each workload in ipcplay and in Python's multiprocessing (and a
-- C program where one exists), run side by side in alternated rounds; prints medians and
-- ratios. Benchmarks are not tests: nothing here times out or fails on a slow machine.
--
--   ipcplay scripts/bench/run.lua [rounds] [filter]
local ipc = require("ipc")

local rounds = tonumber(arg[1]) or 5
local filter = arg[2]
local here = arg[0]:match("^(.*)/[^/]*$") or "."

local function readlink(path)
  local f = io.popen("readlink -f " .. path)
  local r = f:read("l")
  f:close()
  return r
end
local ipcplay = os.getenv("IPCPLAY") or readlink("/proc/" .. ipc.current().pid .. "/exe")

-- name, messages, ipcplay script, python script
local workloads = {
  {"queue_stream", 200000, "queue_stream.lua", "python/queue_stream.py", "queue(1000), 1 producer -> 1 consumer, small integers"},
  {"pipe_stream", 200000, "pipe_stream.lua", "python/pipe_stream.py", "simplex pipe, 1 sender -> 1 receiver, small integers"},
  {"value_lock", 400000, "value_locked.lua", "python/value_locked.py", "2 processes: lock; v.value = v.value + 1; unlock"},
  {"socket_echo", 50000, "socket_echo.lua", "python/socket_echo.py", "Unix stream socket, 8-byte echo round trips"},
}

local function run(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("a")
  f:close()
  local n, seconds = out:match("%S+ (%d+) ([%d%.]+)")
  if not n then error("benchmark command failed: " .. cmd .. "\n" .. out) end
  return tonumber(n) / tonumber(seconds)
end

local function median(t)
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

local function rate(r)
  if r >= 1e6 then return string.format("%.2fM/s", r / 1e6) end
  return string.format("%.0fk/s", r / 1e3)
end

local cpus = io.popen("nproc"):read("l")
print(string.format("ipcplay benchmarks, %d rounds alternated, medians; %s cores, %s", rounds, cpus, os.date("%Y-%m-%d")))
print(string.format("%-14s %12s %12s %8s  %s", "workload", "ipcplay", "python", "ratio", "what"))
for _, w in ipairs(workloads) do
  local name, n, lua, py, what = table.unpack(w)
  if not filter or name:find(filter, 1, true) then
    local ours, theirs = {}, {}
    for _ = 1, rounds do
      ours[#ours + 1] = run(string.format("%s %s/%s %d", ipcplay, here, lua, n))
      theirs[#theirs + 1] = run(string.format("python3 %s/%s %d", here, py, n))
    end
    local a, b = median(ours), median(theirs)
    print(string.format("%-14s %12s %12s %7.1fx  %s", name, rate(a), rate(b), a / b, what))
  end
end
