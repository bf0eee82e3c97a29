-- Kill anywhere: producers, consumers, senders, receivers and lock holders are SIGKILLed
-- at random instants inside put, get, send, recv, lock, acquire, wait, value updates and
-- socket calls; then the survivors must finish, every structure must still work, no
-- item may arrive twice, and the only items lost are those a killed process held.
--
--   ipcplay test tests/fault_injection_test.lua                      (a short run)
--   IPCPLAY_FAULT_ITERATIONS=3000 ipcplay test --timeout 600 tests/fault_injection_test.lua
--   ipcplay test --seed 1234 tests/fault_injection_test.lua          (replay a schedule: the
--                                                                    runner prints the line)
local ipc = require("ipc")
local iterations = tonumber(os.getenv("IPCPLAY_FAULT_ITERATIONS") or "") or 60
local seed = tonumber(os.getenv("IPCPLAY_FAULT_SEED") or "") or ipc.test.seed()
math.randomseed(seed)
print(string.format("fault injection: %d iterations, seed %d (replay with ipcplay test --seed %d)",
  iterations, seed, seed))
io.stdout:flush()

local totals = {iterations = 0, kills = 0, items = 0, lost = 0, recoveries = 0}
local MAX = 4096            -- items per producer per iteration, at most

local function fail(what, ...)
  error(string.format("seed %d: " .. what, seed, ...), 2)
end

-- The victims' common state: received[p * MAX + seq] counts deliveries of item (p, seq);
-- done[p] is the last seq producer p saw put() succeed for.
local function tracker(producers)
  return ipc.array("b", producers * MAX + 1), ipc.array("i", producers)
end

local function check_deliveries(received, done, producers, killed_holders, where)
  local lost = 0
  for p = 0, producers - 1 do
    for seq = 1, MAX - 1 do
      local n = received[p * MAX + seq + 1]
      if n > 1 then fail("%s: item %d:%d delivered %d times", where, p, seq, n) end
      if n == 0 and seq <= done[p + 1] then lost = lost + 1 end
    end
  end
  if lost > killed_holders then
    fail("%s: %d items lost, but only %d killed processes could have held one", where, lost, killed_holders)
  end
  totals.lost = totals.lost + lost
end

local function kill_all(victims)
  -- Every victim dies, in a random order, each at a random instant.
  local order = {}
  for i = 1, #victims do order[i] = victims[i] end
  for i = #order, 2, -1 do local j = math.random(i) order[i], order[j] = order[j], order[i] end
  for _, v in ipairs(order) do
    ipc.sleep(math.random() * 0.003)
    v.process:kill()
  end
  for _, v in ipairs(victims) do v.process:join() end
  totals.kills = totals.kills + #victims
  return victims
end

-- Spawns `n` victims of `role` into `victims`, the i-th running body(i), i from 0.
local function spawn_victims(victims, role, n, body)
  for i = 0, n - 1 do
    victims[#victims + 1] = {role = role, process = ipc.spawn(function() body(i) end)}
  end
end

local function count(list, role)
  local n = 0
  for _, v in ipairs(list) do if v.role == role then n = n + 1 end end
  return n
end

-- A queue, small or streamed items, bounded or not.
local function queue_round()
  local streamed = math.random() < 0.4
  local q = ipc.queue(math.random(0, 3) * 4, streamed and {ring = 65536} or nil)
  local size = streamed and 30000 or 20
  local received, done = tracker(2)
  local victims = {}
  spawn_victims(victims, "producer", 2, function(p)
    for seq = 1, MAX - 1 do
      local pad = string.rep("x", size)
      if q:put({p = p, seq = seq, pad = pad}) then done[p + 1] = seq end
    end
  end)
  spawn_victims(victims, "consumer", 2, function()
    while true do
      local item = q:get()
      assert(#item.pad == size, "a torn item")
      received:add(item.p * MAX + item.seq + 1, 1)
    end
  end)
  local killed = kill_all(victims)
  -- Survivors: a producer puts a marker, a consumer drains everything up to it.
  local tail = ipc.spawn(function() assert(q:put("end", 10), "put blocked after kills") end)
  while true do
    local item, err = q:get(10)
    if err then fail("queue get blocked after kills (%s)", err) end
    if item == "end" then break end
    if #item.pad ~= size then fail("a torn item after kills") end
    received:add(item.p * MAX + item.seq + 1, 1)
  end
  assert(tail:join(10))
  for p = 1, 2 do totals.items = totals.items + done[p] end
  -- Only a consumer can hold a taken item (a producer's unfinished put was never put).
  check_deliveries(received, done, 2, count(killed, "consumer"), streamed and "streamed queue" or "queue")
end

-- A simplex pipe with two senders and two receivers.
local function pipe_round()
  local r, w = ipc.pipe(false)
  local received, done = tracker(2)
  local big = math.random() < 0.3
  local victims = {}
  spawn_victims(victims, "sender", 2, function(p)
    for seq = 1, MAX - 1 do
      if w:send({p = p, seq = seq, pad = big and string.rep("y", 9000) or ""}) then done[p + 1] = seq end
    end
  end)
  spawn_victims(victims, "receiver", 2, function()
    while true do
      local m = r:recv()
      received:add(m.p * MAX + m.seq + 1, 1)
    end
  end)
  local killed = kill_all(victims)
  local tail = ipc.spawn(function() assert(w:send("end")) end)
  while true do
    local m, err = r:recv(10)
    if err then fail("pipe recv blocked after kills (%s)", err) end
    if m == "end" then break end
    received:add(m.p * MAX + m.seq + 1, 1)
  end
  assert(tail:join(10))
  for p = 1, 2 do totals.items = totals.items + done[p] end
  -- A killed receiver costs only the message it was receiving (or had received): what
  -- it had read ahead is recovered by the next receiver (docs/reliability.md).
  check_deliveries(received, done, 2, count(killed, "receiver"), "pipe")
end

-- Lock holders of every kind, killed while holding.
local lock, rlock = ipc.lock(), ipc.rlock()
local value = ipc.value("q", 0)
local cond = ipc.condition(ipc.lock())
local sem = ipc.semaphore(2)
local ev = ipc.event()
local barrier = ipc.barrier(2)
local function locks_round()
  local victims = {}
  local jobs = {
    function() while true do lock:with(function() value.value = value.value + 1 end) end end,
    function() while true do rlock:with(function() rlock:with(function() value:add(1) end) end) end end,
    function() while true do value:with_lock(function() value.value = value.value + 1 end) end end,
    function() while true do cond:with(function() cond:notify_all() cond:wait(0.001) end) end end,
    function() while true do if sem:acquire(0.01) then sem:release() end end end,
    function() while true do ev:set() ev:clear() ev:wait(0.001) end end,
  }
  for _, job in ipairs(jobs) do victims[#victims + 1] = {role = "holder", process = ipc.spawn(job)} end
  kill_all(victims)
  -- Everything still works, from a new process.
  local survivor = ipc.spawn(function()
    for _ = 1, 3 do
      assert(lock:acquire(5), "lock frozen") lock:release()
      assert(rlock:acquire(5), "rlock frozen") rlock:release()
      assert(value:lock(5), "value's lock frozen") value:unlock()
      assert(cond:acquire(5), "condition's lock frozen") cond:notify() cond:release()
      ev:set() assert(ev:wait(1)) ev:clear()
    end
  end)
  if not survivor:join(30) or survivor.exitcode ~= 0 then fail("a lock stayed frozen after its holder was killed") end
  -- A semaphore has no owner: a killed process that held a unit took it with it.
  while sem:get_value() < 2 do sem:release() end
  barrier:reset()
end

-- Socket clients killed mid-exchange; the server goes on.
local sockdir = os.tmpname()
os.remove(sockdir)
os.execute("mkdir -p " .. sockdir)
local server = ipc.unix.listen(sockdir .. "/s.sock", 64)
local echo = ipc.process{daemon = true, target = function()
  while true do
    local c = server:accept()
    if c then
      ipc.spawn(function()
        while true do
          local d = c:recv(4096)
          if not d then break end
          if not c:send(d) then break end
        end
      end)
      c:close()
    end
  end
end}
echo:start()
local function socket_round()
  local victims = {}
  spawn_victims(victims, "client", 3, function()
    local c = assert(ipc.unix.connect(sockdir .. "/s.sock", 5))
    while true do c:send(string.rep("s", 1000)) c:recv(4096) end
  end)
  kill_all(victims)
  local c = ipc.unix.connect(sockdir .. "/s.sock", 5)
  if not c then fail("the server stopped accepting after clients were killed") end
  c:send("ping")
  local got = c:recv(10, 10)
  if got ~= "ping" then fail("the server stopped answering after clients were killed: %s", tostring(got)) end
  c:close()
end

local rounds = {queue_round, pipe_round, locks_round, socket_round}
local t0 = ipc.now()
for i = 1, iterations do
  rounds[(i - 1) % #rounds + 1]()
  totals.iterations = i
end
server:close()
os.execute("rm -rf " .. sockdir)
print(string.format(
  "fault injection: %d iterations, %d processes killed, %d items checked, %d lost (held by killed processes), %.1f s",
  totals.iterations, totals.kills, totals.items, totals.lost, ipc.now() - t0))
