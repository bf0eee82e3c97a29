-- ipcplay's side of the benchmark workloads: `ipcplay workloads.lua NAME N [ARG]`.
-- Each prints "<name> <count> <seconds>" (or "<name> <count> <bytes>" for memory).
local ipc = require("ipc")
local name, n, extra = arg[1], tonumber(arg[2]), arg[3]
local W = {}

local function report(what, count, seconds) print(string.format("%s %d %.6f", what, count, seconds)) end

-- Runs `body` and reports how long it took for `count` operations.
local function measure(count, body)
  local t0 = ipc.now()
  body()
  report(name, count, ipc.now() - t0)
end

-- A stream to one consumer process, which runs `consume`: this process then runs
-- `produce`, timed until the consumer has joined. `spawned`, if given, runs between the
-- spawn and the start of the clock (a pipe's sender closes its read end there).
local function stream(count, consume, produce, spawned)
  local c = ipc.spawn(consume)
  if spawned then spawned() end
  measure(count, function()
    produce()
    c:join()
  end)
end

-- One producer, one consumer, small integers through queue(1000).
function W.queue_stream()
  local q = ipc.queue(1000)
  stream(n, function() for _ = 1, n do q:get() end end, function() for i = 1, n do q:put(i) end end)
end

-- Four producers and four consumers on one queue(1000).
function W.queue_stream_4x4()
  local q = ipc.queue(1000)
  local per = n // 4
  measure(per * 4, function()
    local ps = {}
    for _ = 1, 4 do ps[#ps + 1] = ipc.spawn(function() for _ = 1, per do q:get() end end) end
    for _ = 1, 4 do ps[#ps + 1] = ipc.spawn(function() for i = 1, per do q:put(i) end end) end
    for _, p in ipairs(ps) do p:join() end
  end)
end

-- A joinable queue: the consumer marks every item done; the producer joins.
function W.joinable_queue()
  local q = ipc.joinable_queue(1000)
  local c = ipc.process{daemon = true, target = function() while true do q:get() q:task_done() end end}
  c:start()
  measure(n, function()
    for i = 1, n do q:put(i) end
    q:join()
  end)
end

-- Messages of a given size through queue(64): bytes per second.
function W.queue_bytes()
  local size = tonumber(extra)
  local q = ipc.queue(64)
  local payload = string.rep("x", size)
  stream(n * size, function() for _ = 1, n do assert(#q:get() == size) end end,
         function() for _ = 1, n do q:put(payload) end end)
end

-- Messages of a given size through a simplex pipe, as raw bytes (send_bytes/recv_bytes).
function W.pipe_bytes()
  local size = tonumber(extra)
  local r, w = ipc.pipe(false)
  local payload = string.rep("x", size)
  stream(n * size, function() w:close() for _ = 1, n do assert(#r:recv_bytes() == size) end end,
         function() for _ = 1, n do w:send_bytes(payload) end end, function() r:close() end)
end

-- A simplex pipe, one sender, one receiver, small integers.
function W.pipe_stream()
  local r, w = ipc.pipe(false)
  stream(n, function() w:close() for _ = 1, n do r:recv() end end, function() for i = 1, n do w:send(i) end end,
         function() r:close() end)
end

-- Round trips over a duplex pipe (the partner's join is not timed).
function W.pipe_pingpong()
  local a, b = ipc.pipe()
  local c = ipc.spawn(function() for _ = 1, n do b:send(b:recv()) end end)
  measure(n, function()
    for i = 1, n do a:send(i) a:recv() end
  end)
  c:join()
end

-- Round trips through two semaphores (the partner's join is not timed).
function W.semaphore_pingpong()
  local s1, s2 = ipc.semaphore(0), ipc.semaphore(0)
  local c = ipc.spawn(function() for _ = 1, n do s1:acquire() s2:release() end end)
  measure(n, function()
    for _ = 1, n do s1:release() s2:acquire() end
  end)
  c:join()
end

-- k processes increment one shared value: under its lock, or with add().
local function increments(k, locked)
  local v = ipc.value("q", 0)
  local per = n // k
  measure(per * k, function()
    local ps = {}
    for p = 1, k do
      ps[p] = ipc.spawn(function()
        if locked then
          for _ = 1, per do v:lock() v.value = v.value + 1 v:unlock() end
        else
          for _ = 1, per do v:add(1) end
        end
      end)
    end
    for _, p in ipairs(ps) do p:join() end
    assert(v.value == per * k)
  end)
end
-- Controlled scheduling, timed from outside (inside a controlled run the clock is virtual).
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local ipcplay = os.getenv("IPCPLAY") or "ipcplay"
-- Times one command, its output dropped, as n operations.
local function time_command(command)
  measure(n, function() assert(os.execute(command .. " > /dev/null"), command) end)
end
-- Times explore with `options` on the scenario of three processes and about 100 steps each.
local function time_explore(options)
  time_command(string.format("%s explore %s--runs %d --seed 1 %s/schedule_3x100.lua", ipcplay, options, n, here))
end
-- Times the queue stream as one command, `ipcplay RUN workloads.lua queue_stream n`.
local function time_queue_stream(run)
  time_command(string.format("%s %s%s/workloads.lua queue_stream %d", ipcplay, run, here, n))
end

-- explore's schedules per second: one schedule at a time (--jobs 1), and on every core
-- (--jobs's default: the CPUs).
function W.schedules() time_explore("--jobs 1 ") end
function W.schedules_all_cores() time_explore("") end

-- The same scenario under random exploration.
function W.schedules_random() time_explore("--jobs 1 --strategy random ") end
-- The exhaustive search, stopped by --runs (exit 3, its saved search removed): one
-- schedule at a time (--jobs 1, against schedules_random), and on every core (the
-- other slots run ahead the runs the search will ask for).
local function time_exhaustive(jobs)
  local saved = os.tmpname()
  os.remove(saved)
  measure(n, function()
    local _, _, status = os.execute(string.format(
      "%s explore --exhaustive %s--runs %d --resume %s %s/schedule_3x100.lua > /dev/null",
      ipcplay, jobs, n, saved, here))
    assert(status == 3, "the exhaustive search was not stopped by --runs")
  end)
  os.remove(saved)
end
function W.exhaustive() time_exhaustive("--jobs 1 ") end
function W.exhaustive_cores() time_exhaustive("") end

-- The same queue stream as one command, plain and under --sched (its overhead).
function W.queue_stream_plain() time_queue_stream("") end
function W.queue_stream_sched() time_queue_stream("run --sched random --seed 1 ") end
-- The scheduler's overhead: the stream under --sched pct (PCT mostly lets one process go
-- on; a bounded queue makes it switch at every item once full or empty).
function W.queue_stream_pct() time_queue_stream("run --sched pct --seed 1 ") end
function W.value_lock_2() increments(2, true) end
function W.value_lock_8() increments(8, true) end
function W.value_add_2() increments(2, false) end
function W.value_add_8() increments(8, false) end

-- 8-byte echo round trips over a Unix stream socket (the echo server's end is not timed).
function W.socket_echo()
  local path = string.format("/tmp/ipcplay-bench-%d.sock", ipc.current().pid)
  local srv = ipc.unix.listen(path)
  local s = ipc.spawn(function()
    local c = srv:accept()
    while true do
      local d = c:recv(64)
      if not d then break end
      c:send(d)
    end
  end)
  local c = assert(ipc.unix.connect(path))
  measure(n, function()
    for _ = 1, n do
      c:send("12345678")
      local got = #c:recv(64)
      while got < 8 do got = got + #c:recv(64) end
    end
  end)
  c:close()
  s:join()
  srv:close()
end

-- Spawn n processes that do nothing, then join them.
function W.spawn_join()
  measure(n, function()
    local ps = {}
    for i = 1, n do ps[i] = ipc.spawn(function() end) end
    for i = 1, n do ps[i]:join() end
  end)
end

local function status_kb(pid, field)
  for line in io.lines("/proc/" .. pid .. "/" .. (field:find("^Private") and "smaps_rollup" or "status")) do
    local v = line:match("^" .. field .. ":%s+(%d+) kB")
    if v then return tonumber(v) end
  end
  return 0
end

-- Shared memory used by n queued items of 100 bytes (they stay queued): bytes per item.
function W.memory_queued()
  local before = status_kb("self", "RssShmem")
  local q = ipc.queue()
  local item = string.rep("m", 100)
  for _ = 1, n do q:put(item) end
  local after = status_kb("self", "RssShmem")
  print(string.format("%s %d %d", name, n, (after - before) * 1024))
end

-- Peak RSS (VmHWM) of the sender or of the receiver of n messages of a given size, through
-- queue(64) or a simplex pipe (raw bytes): "<name> <size> <peak bytes>", so that the
-- runner shows the peak as a multiple of the message. The payload is made after the fork,
-- so that the receiver does not inherit it, and the sender's peak is reset once it is made
-- (string.rep builds it in a buffer, then copies it: twice the message for a moment). The
-- receiver collects each message before the next (as Python's reference counting does),
-- so that what is measured is ipcplay's buffers, not how far Lua's collector lets garbage
-- pile up.
local function peak_memory(channel, side)
  local size = tonumber(extra)
  local peak = ipc.value("q", 0)
  local c, send
  if channel == "queue" then
    local q = ipc.queue(64)
    c = ipc.spawn(function()
      for _ = 1, n do assert(#q:get() == size) collectgarbage() end
      peak.value = status_kb("self", "VmHWM")
    end)
    send = function(m) q:put(m) end
  else
    local r, w = ipc.pipe(false)
    c = ipc.spawn(function()
      w:close()
      for _ = 1, n do assert(#r:recv_bytes() == size) collectgarbage() end
      peak.value = status_kb("self", "VmHWM")
    end)
    r:close()
    send = function(m) w:send_bytes(m) end
  end
  local payload = string.rep("x", size)
  collectgarbage()
  local f = assert(io.open("/proc/self/clear_refs", "w"))  -- 5: reset the peak to the current RSS
  f:write("5")
  f:close()
  for _ = 1, n do send(payload) end
  c:join()
  local kb = side == "tx" and status_kb("self", "VmHWM") or peak.value
  print(string.format("%s %d %d", name, size, kb * 1024))
end
function W.memory_queue_tx() peak_memory("queue", "tx") end
function W.memory_queue_rx() peak_memory("queue", "rx") end
function W.memory_pipe_tx() peak_memory("pipe", "tx") end
function W.memory_pipe_rx() peak_memory("pipe", "rx") end

-- Private memory (USS) of an idle child.
function W.memory_idle_child()
  local ready = ipc.event()
  local c = ipc.spawn(function() ready:set() ipc.sleep(30) end)
  ready:wait()
  ipc.sleep(0.2)
  local kb = status_kb(c.pid, "Private_Clean") + status_kb(c.pid, "Private_Dirty")
  c:kill()
  c:join()
  print(string.format("%s 1 %d", name, kb * 1024))
end

assert(W[name], "unknown workload " .. tostring(name))
W[name]()
