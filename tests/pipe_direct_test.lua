-- Direct puts (ipc_layouts.h, ipc_channel_inbox): while a receiver takes small messages in
-- C, a sender puts its frames straight into the pipe's inbox, with no write(2). Messages
-- must still arrive in the order they were sent, whichever way each went (direct, through
-- the pipe once the inbox is full, in several frames, through the lane), and a process
-- waiting in `ipc.wait` or `c:poll` on the pipe must still wake.
--
-- `ipcplay run tests/pipe_direct_test.lua count-writes` (EndToEndTests) also checks, from
-- the sender's /proc/self/io, that the small messages sent while the receiver is between
-- two receives made no write(2) at all. Only without hooks: with --trace or a scheduler
-- every call goes through Swift, and everything through the pipe.
local ipc = require("ipc")
local count_writes = arg[1] == "count-writes"

local function write_calls()
  local f = assert(io.open("/proc/self/io", "r"), "/proc/self/io")
  local text = f:read("a")
  f:close()
  return tonumber(text:match("syscw:%s*(%d+)"))
end

-- 1. The receiver takes one message in C, then stops between two receives; the sender
--    sends small ones (direct: no write), then enough to fill the inbox (the rest through
--    the pipe), then messages of several frames and one through the lane. All arrive in
--    order.
do
  local r, w = ipc.pipe(false)
  local ready, go = ipc.event(), ipc.event()
  local big = string.rep("L", 300 * 1024)  -- past IPC_LANE_MIN: through the lane
  local multi = string.rep("m", 9000)      -- three frames through the pipe
  local sent = ipc.event()
  local receiver = ipc.spawn(function()
    w:close()
    -- Both are in the pipe before the receives: both are taken in C, with no wait, so
    -- this process stays the receiver that senders put frames to directly.
    assert(sent:wait(60), "sent")
    assert(r:recv() == "first" and r:recv() == "second")
    ready:set()
    assert(go:wait(60), "go")
    for i = 1, 100 do assert(r:recv() == i, "direct message " .. i) end
    for i = 101, 1600 do assert(r:recv() == i, "message " .. i) end
    assert(r:recv() == multi, "a message of several frames")
    assert(r:recv() == 1601)
    assert(r:recv() == big, "a message through the lane")
    assert(r:recv() == 1602)
    local v, why = r:recv()
    assert(v == nil and why == "closed", "end of stream: " .. tostring(why))
  end)
  r:close()
  assert(w:send("first") and w:send("second"))
  sent:set()
  assert(ready:wait(60), "ready")
  local before = count_writes and write_calls()
  for i = 1, 100 do assert(w:send(i)) end
  if count_writes then
    local made = write_calls() - before
    assert(made == 0, "100 direct messages made " .. made .. " write calls")
  end
  -- 1,500 frames of 27 bytes do not fit in the inbox's 16 KiB: the rest go through the
  -- pipe (about 27 KiB of its 64), and later small ones too, until a receiver has read
  -- the pipe empty.
  for i = 101, 1600 do assert(w:send(i)) end
  assert(w:send(multi))
  assert(w:send(1601))
  assert(w:send(big))
  assert(w:send(1602))
  go:set()
  w:close()
  assert(receiver:join(60), "the receiver finished")
  assert(receiver.exitcode == 0, "receiver exit " .. tostring(receiver.exitcode))
end

-- 2. A stream in which the receiver keeps up (most messages direct) and the sender
--    sometimes sends larger ones (through the pipe): the order holds throughout.
do
  local r, w = ipc.pipe(false)
  local n = 50000
  local receiver = ipc.spawn(function()
    w:close()
    for i = 1, n do
      local v = r:recv()
      if i % 1000 == 0 then
        assert(type(v) == "string" and #v == 5000 and v:sub(1, #tostring(i)) == tostring(i), "large message " .. i)
      else
        assert(v == i, "message " .. i .. " came as " .. tostring(v))
      end
    end
  end)
  r:close()
  for i = 1, n do
    if i % 1000 == 0 then
      local s = tostring(i)
      w:send(s .. string.rep(".", 5000 - #s))
    else
      w:send(i)
    end
  end
  w:close()
  assert(receiver:join(60) and receiver.exitcode == 0, "receiver exit " .. tostring(receiver.exitcode))
end

-- 3. While the receiving process sleeps in `ipc.wait` (then in `c:poll`), a sender's
--    message wakes it, even though the receiver has taken messages in C before (a direct
--    put would reach only the inbox: the waiter says it polls, and senders then use, or
--    ring, the pipe).
for _, how in ipairs({"wait", "poll"}) do
  local a, b = ipc.pipe()
  local sent, waiting = ipc.event(), ipc.event()
  local partner = ipc.spawn(function()
    for i = 1, 10 do assert(b:send(i)) end
    sent:set()
    assert(waiting:wait(60), "waiting")
    ipc.sleep(0.2)  -- the other is asleep in poll(2) by now
    assert(b:send("wake"))
    assert(b:recv(60) == "done")
  end)
  assert(sent:wait(60), "sent")
  for i = 1, 10 do assert(a:recv() == i) end  -- in C, with no wait: direct puts are on
  waiting:set()
  local t0 = ipc.now()
  if how == "wait" then
    local ready = ipc.wait({a}, 30)
    assert(#ready == 1 and ready[1] == a, "ipc.wait missed a message")
  else
    assert(a:poll(30) == true, "c:poll missed a message")
  end
  assert(ipc.now() - t0 < 20, how .. " woke only at its timeout")
  assert(a:recv() == "wake")
  assert(a:send("done"))
  assert(partner:join(60) and partner.exitcode == 0, how .. ": partner exit " .. tostring(partner.exitcode))
end

-- 4. A receiver that ends (without closing its end) takes no more direct puts: once no
--    reader is left anywhere, `send` says "closed", as on any pipe.
do
  local r, w = ipc.pipe(false)
  local sent = ipc.event()
  local receiver = ipc.spawn(function()
    w:close()
    assert(sent:wait(60), "sent")
    assert(r:recv() == 1 and r:recv() == 2)  -- in C, with no wait: direct puts are on
  end)
  assert(w:send(1) and w:send(2))
  sent:set()
  assert(receiver:join(60) and receiver.exitcode == 0, "receiver exit " .. tostring(receiver.exitcode))
  r:close()
  local ok, why = w:send(3)
  assert(ok == nil and why == "closed", "a send with no reader left: " .. tostring(why))
end

-- 5. The drain idiom, `while c:poll() do c:recv() end`, in lockstep with a sender that
--    sends the next message only when told: a poll that says true always has a message
--    behind it (a poller that comes while a sender puts a frame in directly has that frame
--    moved to the pipe, not a wake-up frame rung after it: that made this hang).
do
  local a, b = ipc.pipe(false)
  local n = tonumber(arg[2]) or 20000
  local turn = ipc.value("q", 0)
  local sender = ipc.spawn(function()
    a:close()
    local x = 0
    for i = 1, n do
      while turn.value ~= i do end
      for k = 1, (i * 7919) % 200 do x = x + k end  -- varied delays: the race comes up
      assert(b:send(i))
    end
  end)
  b:close()
  local x = 0
  for i = 1, n do
    turn.value = i
    for k = 1, (i * 104729) % 200 do x = x + k end
    assert(a:poll(30), "poll timed out at " .. i)
    local got = 0
    while a:poll() do
      local v, err = a:recv()
      -- After the last message the sender may already have ended: its closed end polls true.
      if err == "closed" and i == n then break end
      assert(v == i, "message " .. i)
      got = got + 1
    end
    assert(got == 1, "round " .. i .. " took " .. got)
  end
  assert(sender:join(60) and sender.exitcode == 0, "sender exit " .. tostring(sender.exitcode))
end
