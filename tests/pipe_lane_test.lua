-- Messages larger than 256 KiB go through a connection's lane (slots of shared memory,
-- each named by a small frame in the pipe). Their sizes on both sides of every limit, in
-- both directions at once, mixed with small messages; senders and receivers SIGKILLed in
-- the middle of one; and a sender whose every reader is gone while it waits for a slot.
local ipc = require("ipc")
local helpers = require("helpers")
math.randomseed(tonumber(arg[1]) or ipc.test.seed())
local MiB = 1048576

-- A message that says what it is: its number k, repeated, cut to `size` bytes.
local function make(size, k)
  local unit = string.format("%07d;", k)
  return (string.rep(unit, size // 8 + 1)):sub(1, size)
end
local function check(m, what)
  local k = tonumber(m:sub(1, 7))
  assert(k and m == make(#m, k), what .. ": a message of " .. #m .. " bytes is not whole")
  return k
end

-- 1. Sizes around the lane's limit (256 KiB), its slot (1 MiB) and several slots, as raw
--    bytes and as values, with small messages between, both directions at once.
local sizes = {256 * 1024, 256 * 1024 + 1, MiB - 1, MiB, MiB + 1, 4 * MiB + 3, 9 * MiB, 17, 300000}
local a, b = ipc.pipe()
local function exchange(c)
  for k, size in ipairs(sizes) do
    c:send_bytes(make(size, k))
    c:send(k)
    c:send({k = k, s = make(size, k), tail = "end"})
  end
end
local function expect(c)
  for k, size in ipairs(sizes) do
    local m = c:recv_bytes()
    assert(#m == size and check(m, "bytes") == k, "bytes " .. k)
    assert(c:recv() == k, "small message between large ones " .. k)
    local v = c:recv()
    assert(type(v) == "table" and v.k == k and v.s == make(size, k) and v.tail == "end", "value " .. k)
  end
end
local peer = ipc.spawn(function()
  local sender = ipc.spawn(function() exchange(b) end)
  expect(b)
  sender:join()
  assert(sender.exitcode == 0)
end)
exchange(a)
expect(a)
peer:join()
assert(peer.exitcode == 0, "the peer failed")

-- 2. Senders killed in the middle of large messages; then a sender that takes the send
--    lock over from a dead one (whose slots may be named by frames never written) sends
--    more. The receiver gets whole messages only, and every one of the survivor's.
for round = 1, 3 do
  local r, w = ipc.pipe(false)
  local got = ipc.queue()
  local receiver = ipc.spawn(function()
    w:close()
    while true do
      local m, err = r:recv_bytes()
      if m == nil then assert(err == "closed", tostring(err)) break end
      got:put(check(m, "after killed senders"))
    end
  end)
  r:close()
  local victims = helpers.spawn_victims(2, function(v, i)
    w:send_bytes(make(MiB * (1 + (i + v) % 3) + i, v * 100000 + i))
  end)
  ipc.sleep(0.02 + math.random() * 0.1)
  helpers.kill_all(victims)
  for i = 1, 5 do w:send_bytes(make(2 * MiB + 5, 900000 + round * 10 + i)) end
  w:close()
  receiver:join()
  assert(receiver.exitcode == 0, "receiver failed in round " .. round)
  local survivor = {}
  while true do
    local k = got:get_nowait()
    if k == nil then break end
    if k >= 900000 then survivor[#survivor + 1] = k end
  end
  assert(#survivor == 5, "round " .. round .. ": the survivor's messages: " .. #survivor)
  for i = 1, 5 do assert(survivor[i] == 900000 + round * 10 + i, "in order") end
end

-- 3. Receivers killed in the middle of large messages: the next receiver takes over the
--    frames (and slots) the dead one left, and gets whole messages only, the last one too.
for _ = 1, 3 do
  local r, w = ipc.pipe(false)
  local total = 40
  local sender = ipc.spawn(function()
    r:close()
    for i = 1, total do w:send_bytes(make(MiB * (1 + i % 3) + i, i)) end
  end)
  w:close()
  local victim = ipc.spawn(function()
    while true do check(r:recv_bytes(), "victim") end
  end)
  ipc.sleep(0.01 + math.random() * 0.05)
  victim:kill()
  victim:join()
  local last = 0
  while last < total do
    local m, err = r:recv_bytes()
    assert(m, "receiving after a killed receiver: " .. tostring(err))
    local k = check(m, "after a killed receiver")
    assert(k > last, "in order")
    last = k
  end
  sender:join()
  assert(sender.exitcode == 0)
end

-- 4. Every reader gone while the sender waits for a slot: the send says "closed".
do
  local r, w = ipc.pipe(false)
  local reader = ipc.spawn(function()
    w:close()
    assert(#r:recv_bytes() == 3 * MiB)
  end)
  r:close()
  local ok, err
  for _ = 1, 20 do
    ok, err = w:send_bytes(make(3 * MiB, 7))
    if not ok then break end
  end
  reader:join()
  assert(ok == nil and err == "closed", "a send with no reader: " .. tostring(err))
end

-- 5. Large messages received while garbage with finalizers that call ipc waits: the full
--    collection made before a large string (to reuse the last one's memory) runs them
--    in the middle of the receive.
do
  local r, w = ipc.pipe(false)
  local q = ipc.queue()
  local n = 5
  local sender = ipc.spawn(function()
    r:close()
    for i = 1, n do w:send_bytes(make(16 * MiB + i, i)) end
    for i = 1, n do w:send({i = i, s = make(16 * MiB + i, i)}) end
  end)
  w:close()
  local finalized = 0
  for i = 1, 2 * n do
    for _ = 1, 20 do
      setmetatable({}, {__gc = function()
        assert(q:put_nowait(i))
        finalized = finalized + 1
      end})
    end
    if i <= n then
      assert(check(r:recv_bytes(), "with finalizers") == i)
    else
      local v = r:recv()
      assert(v.i == i - n and check(v.s, "a value with finalizers") == i - n)
    end
  end
  sender:join()
  assert(sender.exitcode == 0)
  collectgarbage()
  assert(finalized == 20 * 2 * n and q:qsize() == 20 * 2 * n, "finalizers run: " .. finalized)
end

print("pipe lane test ok")
