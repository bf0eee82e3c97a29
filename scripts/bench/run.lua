-- The benchmark suite: every workload in ipcplay, in Python's multiprocessing (fork) and,
-- where it means something, in a small C program, run side by side in alternated rounds;
-- prints the medians, the ratios, and each target of issue 7 with whether it is met.
-- Benchmarks are not tests: nothing here fails or times out on a slow machine.
--
--   swift build -c release --static-swift-stdlib
--   .build/release/ipcplay scripts/bench/run.lua [rounds=5] [filter[,filter...]]
local ipc = require("ipc")

local rounds = tonumber(arg[1]) or 5
local filter = arg[2]
local here = arg[0]:match("^(.*)/[^/]*$") or "."

local function capture(cmd)
  local f = io.popen(cmd .. " 2>&1")
  local out = f:read("a")
  local ok = f:close()
  return out, ok
end
local ipcplay = os.getenv("IPCPLAY") or capture("readlink -f /proc/" .. ipc.current().pid .. "/exe"):gsub("%s+$", "")

-- The C program, compiled once for this run if a compiler is there.
local cbench = string.format("/tmp/ipcplay-bench-c-%d", ipc.current().pid)
local _, compiled = capture(string.format("cc -O2 -o %s %s/c/bench.c -lpthread", cbench, here))
if not compiled then cbench = nil end
-- value_lock's loop in lua5.4 on a C object that does nothing, if Lua's headers are there.
local ceiling = string.format("/tmp/ipcplay-bench-ceiling-%d.so", ipc.current().pid)
local _, ceiling_built = capture(string.format(
  "cc -O2 -shared -fPIC $(pkg-config --cflags lua5.4) -o %s %s/c/lua_ceiling.c", ceiling, here))
if not ceiling_built then ceiling = nil end
-- Start-up is timed on a one-line script, the same file for ipcplay and for lua5.4.
local oneline = string.format("/tmp/ipcplay-bench-oneline-%d.lua", ipc.current().pid)
do
  local f = assert(io.open(oneline, "w"))
  f:write("local answer = 6 * 7\n")
  f:close()
end

local function lua(name, n, x)
  return string.format("IPCPLAY=%s %s %s/workloads.lua %s %d %s", ipcplay, ipcplay, here, name, n, x or "")
end
local function py(name, n, x)
  return string.format("python3 %s/python/workloads.py %s %d %s", here, name, n, x or "")
end
local function c(name, n, x) return cbench and string.format("%s %s %d %s", cbench, name, n, x or "") end
local function startup(...)
  return cbench and string.format("%s startup 40 %s", cbench, table.concat({...}, " "))
end

-- kind: "rate" (count/s, higher is better), "bytes" (bytes/s), "time" (seconds for
-- count runs, lower is better), "memory" (bytes, lower is better), "multiple" (bytes over
-- the count printed, e.g. a peak RSS over the message size; lower is better).
local MiB = 1048576
local function gbps(r) return r.ours >= 1e9 end
local function pipe_target(r) return r.ours >= 1e9 and r.vs_py ~= nil and r.vs_py >= 1 end
local function under3(r) return r.ours < 3 end
-- At least `python_ratio` times Python and `c_ratio` times the C floor.
local function at_least(python_ratio, c_ratio)
  return function(r) return r.vs_py ~= nil and r.vs_py >= python_ratio and r.vs_c ~= nil and r.vs_c >= c_ratio end
end

-- A "rate" row of workload `name` (its id too): `counts` says how many to run in ipcplay,
-- in Python and in C (a missing count: not run there).
local function rate(name, what, counts, target, check)
  return {id = name, what = what, kind = "rate", ours = lua(name, counts[1]),
    python = counts[2] and py(name, counts[2]), c = counts[3] and c(name, counts[3]), target = target, check = check}
end

-- Large messages, `count` of `mib` MiB each (256 MiB a run). C: a 16 MiB byte ring in
-- shared memory, copied in and out (queue); the whole message in one write, read into a
-- reused buffer (pipe).
local function large(channel, mib, count)
  local name, size = channel .. "_bytes", mib * MiB
  return {id = string.format("%s_%dMiB", channel, mib), kind = "bytes",
    what = channel == "queue" and string.format("queue(64), %d MiB strings", mib)
      or string.format("simplex pipe, send_bytes of %d MiB", mib),
    ours = lua(name, count, size), python = py(name, count, size), c = c(name, count, size),
    target = channel == "queue" and "≥ 1 GB/s" or "≥ 1 GB/s; ≥ Python's send_bytes",
    check = channel == "queue" and gbps or pipe_target}
end
-- The peak RSS of the sender ("tx") or the receiver ("rx") of four 64 MiB messages.
local function peak(channel, side)
  local name = string.format("memory_%s_%s", channel, side)
  return {id = string.format("mem_%s_64MiB_%s", channel, side), kind = "multiple",
    what = string.format("%s, 64 MiB messages: %s's peak RSS", channel, side == "tx" and "sender" or "receiver"),
    ours = lua(name, 4, 64 * MiB), python = py(name, 4, 64 * MiB),
    target = "< 3x the message", check = under3}
end
local W = {
  rate("queue_stream", "queue(1000) 1:1, 8 B items", {200000, 200000, 1000000},
    "≥ 10x multiprocessing.Queue; ≥ 0.5x C", at_least(10, 0.5)),
  rate("joinable_queue", "joinable queue, task_done + join", {200000, 100000, 1000000},
    "≥ 10x JoinableQueue", function(r) return r.vs_py and r.vs_py >= 10 end),
  rate("queue_stream_4x4", "queue(1000) 4 producers : 4 consumers", {200000, 100000, 1000000},
    "≥ 0.5x the 1:1 figure", function(r, all) return all.queue_stream and r.ours >= 0.5 * all.queue_stream.ours end),
  {id = "queue_8B", what = "queue(64), 8 B strings", kind = "bytes",
   ours = lua("queue_bytes", 200000, 8), python = py("queue_bytes", 100000, 8)},
  {id = "queue_1KiB", what = "queue(64), 1 KiB strings", kind = "bytes",
   ours = lua("queue_bytes", 100000, 1024), python = py("queue_bytes", 50000, 1024)},
  {id = "queue_1MiB", what = "queue(64), 1 MiB strings", kind = "bytes",
   ours = lua("queue_bytes", 1000, MiB), python = py("queue_bytes", 500, MiB), c = c("queue_bytes", 1000, MiB),
   target = "≥ 1 GB/s", check = gbps},
  large("queue", 4, 64), large("queue", 16, 16), large("queue", 64, 4),
  large("pipe", 1, 256), large("pipe", 4, 64), large("pipe", 16, 16), large("pipe", 64, 4),
  peak("queue", "tx"), peak("queue", "rx"), peak("pipe", "tx"), peak("pipe", "rx"),
  rate("pipe_stream", "simplex pipe 1:1, small integers", {200000, 200000, 1000000},
    "≥ 3x Pipe(False); ≥ 0.6x C", at_least(3, 0.6)),
  rate("pipe_pingpong", "duplex pipe round trips", {50000, 50000, 100000},
    "≥ 1.0x C", function(r) return r.vs_c and r.vs_c >= 1.0 end),
  rate("semaphore_pingpong", "two semaphores, round trips", {50000, 50000, 100000},
    "≥ 1.0x C", function(r) return r.vs_c and r.vs_c >= 1.0 end),
  rate("value_lock_2", "lock; v.value = v.value + 1; unlock, 2 procs", {1000000, 400000, 4000000},
    "≥ 5x with v.get_lock(); ≥ 0.25x C", at_least(5, 0.25)),
  {id = "value_lock_lua", what = "the same loop, lua5.4 on a C object shaped as a value, doing nothing, 1 proc",
   kind = "rate",
   ours = ceiling and string.format("lua5.4 %s/lua_ceiling.lua %s 4000000", here, ceiling),
   c = c("value_lock_2", 4000000)},
  rate("value_lock_8", "the same, 8 processes", {400000, 200000, 4000000}),
  {id = "value_add_2", what = "v:add(1), 2 processes (Python: locked +=)", kind = "rate",
   ours = lua("value_add_2", 1000000), python = py("value_lock_2", 400000), c = c("value_add_2", 20000000)},
  {id = "value_add_8", what = "v:add(1), 8 processes (Python: locked +=)", kind = "rate",
   ours = lua("value_add_8", 1000000), python = py("value_lock_8", 200000), c = c("value_add_8", 20000000)},
  rate("socket_echo", "Unix stream socket, 8 B echo round trips", {50000, 50000, 100000}),
  rate("schedules", "explore --jobs 1: schedules/s, 3 processes, ~100 steps", {500},
    "≥ 200/s (Coyote: ~95/s in-process)", function(r) return r.ours >= 200 end),
  {id = "schedules_cores", what = "the same on every core (--jobs = CPUs)", kind = "rate",
   ours = lua("schedules_all_cores", 2000),
   target = "≥ 1,000/s", check = function(r) return r.ours >= 1000 end},
  rate("schedules_random", "explore --strategy random: the same scenario", {500}),
  rate("exhaustive", "explore --exhaustive --jobs 1: the same scenario", {500},
    "≥ schedules_random", function(r, all)
      return all.schedules_random ~= nil and r.ours >= all.schedules_random.ours end),
  rate("exhaustive_cores", "the same on every core (runs made ahead)", {500}),
  rate("queue_stream_plain", "queue(1000) 1:1, 20k items, whole command", {20000}),
  rate("queue_stream_sched", "the same under --sched random", {20000}),
  {id = "sched_overhead", what = "200k items under --sched pct; C column: plain run", kind = "rate",
   ours = lua("queue_stream_pct", 200000), c = lua("queue_stream_plain", 200000), cname = "plain",
   target = "≥ 0.2x plain (≤ 5x its time)", check = function(r) return r.vs_c and r.vs_c >= 0.2 end},
  {id = "sched_floor", what = "the same; C column: its floor, 200k blocking handoffs on one CPU", kind = "rate",
   ours = lua("queue_stream_pct", 200000), c = c("handoffs_one_cpu", 200000), cname = "handoffs"},
  {id = "spawn_join", what = "spawn and join 100 processes", kind = "time",
   ours = lua("spawn_join", 100), python = py("spawn_join", 100), c = c("spawn_join", 100),
   target = "≥ 3x faster than Python", check = function(r) return r.vs_py and r.vs_py >= 3 end},
  {id = "startup", what = "start-up: a one-line script / lua5.4 on it / import multiprocessing", kind = "time",
   ours = startup(ipcplay, oneline), python = startup("python3", "-c", "'import multiprocessing'"),
   c = startup("lua5.4", oneline), cname = "lua5.4",
   target = "≤ 3x lua5.4 on the same file", check = function(r) return r.vs_c and 1 / r.vs_c <= 3 end},
  {id = "memory_queued", what = "100k queued 100 B items: bytes each", kind = "memory",
   ours = lua("memory_queued", 100000), per = true,
   target = "≤ 2x their bytes (200 B)", check = function(r) return r.ours <= 200 end},
  {id = "memory_idle_child", what = "private memory of an idle child", kind = "memory",
   ours = lua("memory_idle_child", 1), python = py("memory_idle_child", 1),
   target = "≤ 2 MiB", check = function(r) return r.ours <= 2 * 1048576 end},
}

local function measure(cmd, kind, per)
  if not cmd then return nil end
  local out = capture(cmd)
  local count, value = out:match("%S+ (%d+) ([%d%.]+)%s*$")
  if not count then
    io.stderr:write("benchmark command failed: " .. cmd .. "\n" .. out .. "\n")
    return nil
  end
  count, value = tonumber(count), tonumber(value)
  if kind == "memory" then return per and value / count or value end
  if kind == "multiple" then return value / count end
  if kind == "time" then return value / count end
  return count / value
end

local function median(t)
  if #t == 0 then return nil end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function show(v, kind)
  if not v then return "-" end
  if kind == "rate" then
    if v < 1e4 then return string.format("%.0f/s", v) end
    return v >= 1e6 and string.format("%.2fM/s", v / 1e6) or string.format("%.0fk/s", v / 1e3)
  elseif kind == "bytes" then
    return v >= 1e9 and string.format("%.2f GB/s", v / 1e9) or string.format("%.0f MB/s", v / 1e6)
  elseif kind == "time" then
    return v >= 1 and string.format("%.2f s", v) or string.format("%.2f ms", v * 1e3)
  elseif kind == "multiple" then
    return string.format("%.2fx", v)
  else
    return v >= 1048576 and string.format("%.2f MiB", v / 1048576) or string.format("%.0f B", v)
  end
end

local cpus = capture("nproc"):gsub("%s+$", "")
print(string.format("ipcplay benchmarks: %d rounds alternated, medians; %s cores; %s",
  rounds, cpus, os.date("%Y-%m-%d %H:%M")))
print("ratios are ipcplay/other as speed (for times and memory: other/ipcplay), so > 1 means ipcplay is better")
print()
print(string.format("| %-18s | %-44s | %11s | %11s | %11s | %7s | %7s | %-28s | %-4s |",
  "workload", "what", "ipcplay", "python", "C", "vs py", "vs C", "target", "met"))
print("|" .. string.rep("-", 20) .. "|" .. string.rep("-", 46) .. "|" .. string.rep("-", 13) ..
  "|" .. string.rep("-", 13) .. "|" .. string.rep("-", 13) .. "|" .. string.rep("-", 9) .. "|" .. string.rep("-", 9) ..
  "|" .. string.rep("-", 30) .. "|" .. string.rep("-", 6) .. "|")
local all = {}
for _, w in ipairs(W) do
  local wanted = not filter
  for f in (filter or ""):gmatch("[^,]+") do wanted = wanted or w.id:find(f, 1, true) ~= nil end
  if wanted then
    local a, b, cc = {}, {}, {}
    for _ = 1, rounds do
      a[#a + 1] = measure(w.ours, w.kind, w.per)
      b[#b + 1] = measure(w.python, w.kind, w.per)
      cc[#cc + 1] = measure(w.c, w.kind, w.per)
    end
    local r = {ours = median(a), python = median(b), c = median(cc)}
    local better = (w.kind == "rate" or w.kind == "bytes")
    local function ratio(x, y) if not x or not y then return nil end return better and x / y or y / x end
    r.vs_py, r.vs_c = ratio(r.ours, r.python), ratio(r.ours, r.c)
    all[w.id] = r
    local met = "-"
    if w.check then met = w.check(r, all) and "yes" or "no" end
    print(string.format("| %-18s | %-44s | %11s | %11s | %11s | %7s | %7s | %-28s | %-4s |",
      w.id, w.what, show(r.ours, w.kind), show(r.python, w.kind),
      (w.cname and r.c and (show(r.c, w.kind))) or show(r.c, w.kind),
      r.vs_py and string.format("%.2fx", r.vs_py) or "-", r.vs_c and string.format("%.2fx", r.vs_c) or "-",
      w.target or "", met))
    io.stdout:flush()
  end
end
os.remove(oneline)
if cbench then os.remove(cbench) end
if ceiling then os.remove(ceiling) end
