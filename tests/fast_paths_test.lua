-- The C fast paths (a small item put on a queue or taken from it, a small message sent or
-- received on a pipe, a semaphore's acquire and release, a value's add, a joinable
-- queue's task_done) agree with the Swift bindings they stand in for: values of every
-- simple kind and of sizes on both sides of the fast paths' limits cross in both
-- directions, fast calls meet slow ones (tables, long strings, timeouts), a queue's ring
-- wraps, closed objects say "closed", `ipc.wait` wakes on a fast put, misuse raises as
-- before, `v:add` sums as before, and processes SIGKILLed inside these calls leave the
-- objects whole. EndToEndTests also run it with --trace, where every call goes through
-- the gate in Swift: both runs must pass.
local ipc = require("ipc")
math.randomseed(tonumber(arg[1]) or ipc.test.seed())
local stream_items = tonumber(arg[2]) or 250000  -- enough to wrap a queue's ring
local turns = math.min(20000, stream_items)

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "table" then
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  if type(a) ~= "number" then return a == b end
  if a ~= a then return b ~= b end  -- NaN
  if math.type(a) ~= math.type(b) then return false end
  if a == 0 and math.type(a) == "float" then return 1 / a == 1 / b end  -- -0.0 stays negative
  return a == b
end

-- Each value, with nil kept in place (n counts them).
local values = {n = 0}
local function add(v) values.n = values.n + 1; values[values.n] = v end
for _, v in ipairs({true, false, 0, 1, 63, 64, -1, -64, 300, math.maxinteger, math.mininteger,
                    1.5, -0.0, 0.0, math.huge, -math.huge, 0 / 0, 1e-300}) do add(v) end
add(nil)
-- Strings on both sides of the fixed-string tag (31), of one varint byte (127), of the
-- queue's fast limit (253 bytes take 256 encoded), of the pipe's frame (4072) and beyond.
for _, len in ipairs({0, 1, 31, 32, 127, 128, 200, 252, 253, 254, 255, 256,
                      1000, 1024, 1025, 4000, 4070, 4072, 4073, 70000}) do
  local chars = {}
  for i = 1, len do chars[i] = string.char(math.random(0, 255)) end
  add(table.concat(chars))
end
add({1, 2, {x = "y", [3] = false}, s = string.rep("t", 40)})
local function each(f) for i = 1, values.n do f(values[i], i) end end

-- 1. A queue in one process: one value at a time, then all of them queued at once.
do
  local q = ipc.queue()
  each(function(v, i)
    assert(q:put(v) == true)
    local got = q:get()
    assert(same(v, got), "queue round trip of value " .. i)
  end)
  each(function(v) q:put(v) end)
  each(function(v, i) assert(same(v, q:get_nowait()), "queued value " .. i) end)
  assert(q:empty())
  -- put_nowait on a full queue and get_nowait on an empty one fall short, as before.
  local small = ipc.queue(1)
  assert(small:put_nowait(1) == true)
  local ok, why = small:put_nowait(2)
  assert(ok == nil and why == "full", tostring(why))
  assert(small:get_nowait() == 1)
  local none, why2 = small:get_nowait()
  assert(none == nil and why2 == "empty", tostring(why2))
end

-- 2. Between processes, fast on one side and slow (a timeout argument) on the other.
do
  local q, back = ipc.queue(8), ipc.queue(8)
  local echo = ipc.spawn(function()
    for i = 1, values.n do
      local v = q:get()                      -- fast
      back:put(v, 10)                         -- slow
      local w = q:get(10)                     -- slow
      back:put(w)                             -- fast
      assert(same(v, w), "echo " .. i)
    end
  end)
  each(function(v, i)
    q:put(v, 10)
    assert(same(v, back:get()), "slow put, fast get " .. i)
    q:put(v)
    assert(same(v, back:get(10)), "fast put, slow get " .. i)
  end)
  assert(echo:join(30) and echo.exitcode == 0)
end

-- 3. A long stream through a queue wraps its ring (at the end of the warm zone): FIFO
--    order holds across the wrap, which the Swift side handles.
do
  local q = ipc.queue(1000)
  local n = stream_items
  local consumer = ipc.spawn(function()
    for i = 1, n do
      local v = q:get()
      if v ~= i then error("stream: expected " .. i .. ", got " .. tostring(v)) end
    end
  end)
  for i = 1, n do q:put(i) end
  assert(consumer:join(60) and consumer.exitcode == 0)
end

-- 4. A pipe: every value through send/recv, strings through send_bytes/recv_bytes, fast
--    and slow calls alternating, in one direction and echoed back.
do
  local a, b = ipc.pipe()
  local echo = ipc.spawn(function()
    for i = 1, values.n do
      local v = b:recv()                      -- fast when small
      b:send(v)
      local w = b:recv(10)                    -- slow
      assert(same(v, w), "pipe echo " .. i)
      b:send(w)
      if type(v) == "string" then
        local raw = b:recv_bytes()
        assert(raw == v, "pipe bytes " .. i)
        b:send_bytes(raw)
      end
    end
  end)
  each(function(v, i)
    assert(a:send(v) == true)
    assert(same(v, a:recv(10)), "pipe send, recv " .. i)
    a:send(v)
    assert(same(v, a:recv()), "pipe send, fast recv " .. i)
    if type(v) == "string" then
      a:send_bytes(v)
      assert(a:recv_bytes() == v, "pipe bytes back " .. i)
    end
  end)
  assert(echo:join(30) and echo.exitcode == 0)
  -- recv_bytes of a value sent with send gives its encoded bytes; recv of raw bytes
  -- gives them as a string.
  a:send(5)
  assert(b:recv_bytes() == string.char(0x85))
  a:send_bytes("raw")
  assert(b:recv() == "raw")
end

-- 5. Closed ends and queues say so; a receiving end cannot send.
do
  local q = ipc.queue()
  q:put(1)
  q:close()
  local ok, why = q:put(2)
  assert(ok == nil and why == "closed", tostring(why))
  ok, why = q:get()
  assert(ok == nil and why == "closed", tostring(why))
  local r, w = ipc.pipe(false)
  local sent = pcall(r.send, r, 1)
  assert(not sent, "a receiving end sent")
  local err = select(2, pcall(r.send, r, 1))
  assert(tostring(err):find("^connection:send: this end only receives"), tostring(err))
  w:close()
  ok, why = w:send(1)
  assert(ok == nil and why == "closed", tostring(why))
  r:close()
  ok, why = r:recv()
  assert(ok == nil and why == "closed", tostring(why))
end

-- 6. ipc.wait wakes when another process puts with the fast path.
do
  local q = ipc.queue()
  local putter = ipc.spawn(function()
    ipc.sleep(0.05)
    q:put("here")
  end)
  local ready = ipc.wait({q}, 30)
  assert(#ready == 1 and ready[1] == q, "ipc.wait missed a fast put")
  assert(q:get() == "here")
  putter:join()
end

-- 7. Semaphores: a ping-pong counts every turn; a bounded one refuses a release over its
--    bound with the call's name; the plain one's value is what the calls left.
do
  local s1, s2 = ipc.semaphore(0), ipc.semaphore(0)
  local counted = ipc.value("q", 0)
  local partner = ipc.spawn(function()
    for _ = 1, turns do s1:acquire() counted:add(1) s2:release() end
  end)
  for _ = 1, turns do s1:release() s2:acquire() end
  assert(partner:join(30) and counted.value == turns)
  assert(s1:get_value() == 0 and s2:get_value() == 0)
  local b = ipc.bounded_semaphore(1)
  local ok, err = pcall(b.release, b)
  assert(not ok and tostring(err):find("^bounded_semaphore:release"), tostring(err))
  assert(b:acquire() == true and b:get_value() == 0)
  b:release()
  assert(b:get_value() == 1)
end

-- 8. v:add: sums that fit, for every signed typecode, from two processes at once; a sum
--    that does not fit raises as before and changes nothing; other typecodes add too.
for _, tc in ipairs({"b", "h", "i", "l", "q"}) do
  local v = ipc.value(tc, 0)
  assert(v:add(5) == 5 and v:add(-7) == -2 and v.value == -2)
  local other = ipc.spawn(function() for _ = 1, 100 do v:add(1) end end)  -- within int8 however they interleave
  for _ = 1, 100 do v:add(-1) end
  other:join()
  assert(v.value == -2, "typecode " .. tc .. ": " .. v.value)
  local max = ({b = 127, h = 32767, i = 2147483647})[tc] or math.maxinteger
  v.value = max
  local ok, err = pcall(v.add, v, 1)
  assert(not ok and tostring(err):find("^value:add: .*does not fit typecode"), tostring(err))
  assert(v.value == max)
end
assert(ipc.value("d", 1.5):add(1) == 2.5)
assert(ipc.value("B", 250):add(5) == 255)

-- 8b. A joinable queue's task_done: consumers in two processes mark every item of a
--     stream done, fast, and join returns only then; one more task_done raises as before.
do
  local jq = ipc.joinable_queue(16)
  local done = ipc.value("q", 0)
  local consumers = {}
  for _ = 1, 2 do
    consumers[#consumers + 1] = ipc.spawn(function()
      while true do
        local item = jq:get()
        if item == false then jq:task_done() return end
        done:add(1)
        jq:task_done()
      end
    end)
  end
  for i = 1, turns do jq:put(i) end
  assert(jq:join(30), "join timed out")
  assert(done.value == turns, "joined before every item was done: " .. done.value)
  for _ = 1, #consumers do jq:put(false) end
  jq:join()
  for _, c in ipairs(consumers) do c:join() end
  local ok, err = pcall(jq.task_done, jq)
  assert(not ok and tostring(err):find("^joinable_queue:task_done: called more times"), tostring(err))
end

-- 9. Processes SIGKILLed at random instants inside fast puts, gets, sends, receives and
--    task_done: the survivors find the queues, the pipe and the semaphore unlocked and whole.
for round = 1, 6 do
  local q = ipc.queue(round % 2 == 0 and 4 or 0)
  local r, w = ipc.pipe(false)
  local sem = ipc.semaphore(1)
  local jq = ipc.joinable_queue()
  local victims = {}
  for v = 1, 2 do
    victims[#victims + 1] = ipc.spawn(function()
      local i = 0
      while true do
        i = i + 1
        q:put("victim" .. v .. ":" .. i)
        q:get_nowait()
        w:send("victim" .. v .. ":" .. i)
        sem:acquire()
        sem:release()
        jq:put(i)
        jq:get_nowait()
        jq:task_done()
      end
    end)
  end
  victims[#victims + 1] = ipc.spawn(function()  -- a receiver that dies holding its lock
    while true do r:recv() end
  end)
  ipc.sleep(math.random() * 0.03)
  for _, v in ipairs(victims) do v:kill() end
  for _, v in ipairs(victims) do v:join() end
  -- Queue: whole items only, and room for the survivors.
  while true do
    local item = q:get_nowait()
    if item == nil then break end
    assert(item:match("^victim%d:%d+$"), "queue item corrupted: " .. tostring(item))
  end
  for i = 1, 50 do
    assert(q:put("survivor:" .. i, 10), "put blocked after a kill")
    assert(q:get(10) == "survivor:" .. i, "survivor item lost (round " .. round .. ")")
  end
  for i = 1, 4 do assert(q:put(i)) end  -- fast, up to the bound
  for i = 1, 4 do assert(q:get() == i) end
  -- Joinable queue: its state lock is free, and marking an item done still counts.
  while jq:get_nowait() do jq:task_done() end
  assert(jq:put("survivor", 10) and jq:get(10) == "survivor", "joinable queue blocked after a kill")
  jq:task_done()
  -- Pipe: what the victims left is whole messages, then the survivor's arrive in order.
  local sender = ipc.spawn(function()
    for i = 1, 50 do assert(w:send("survivor:" .. i)) end
    w:send("end")
  end)
  w:close()
  local next_survivor = 1
  while true do
    local m, why = r:recv(10)
    assert(m, "pipe blocked after a kill: " .. tostring(why))
    if m == "end" then break end
    local who, i = m:match("^(%a+)%d?:(%d+)$")
    assert(who, "pipe message corrupted: " .. m)
    if who == "survivor" then
      assert(tonumber(i) == next_survivor, "survivor message out of order")
      next_survivor = next_survivor + 1
    end
  end
  assert(next_survivor == 51)
  sender:join()
  r:close()
  -- Semaphore: a victim killed holding the unit keeps it (a semaphore has no owner);
  -- otherwise it is there.
  local v = sem:get_value()
  assert(v == 0 or v == 1, "semaphore value " .. v)
end
print("fast paths test ok")
