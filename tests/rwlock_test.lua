-- ipc.rwlock (an addition): readers share it, a writer excludes everybody, and a process
-- that dies reading or writing leaves it free.
local ipc = require("ipc")
local t = ipc.test

-- One process: re-entrant reads, and the calls that would wait for themselves.
local rw = ipc.rwlock({name = "board"})
t.eq(tostring(rw), "<rwlock board readers=0>")
t.eq(rw:acquire_read(), true)
t.eq(rw:acquire_read(0), true, "a reader reads again at once")
t.eq(rw:readers(), 1)
t.raises(function() rw:acquire_write() end, "^rwlock:acquire_write: this process already reads board")
rw:release_read()
rw:release_read()
t.raises(function() rw:release_read() end, "^rwlock:release_read: this process does not read board")
t.eq(rw:acquire_write(0), true)
t.raises(function() rw:acquire_read() end, "^rwlock:acquire_read: this process already writes board")
t.raises(function() rw:acquire_write() end, "^rwlock:acquire_write: this process already writes board")
rw:release_write()
t.raises(function() rw:release_write() end, "^rwlock:release_write: this process does not write board")
t.raises(function() rw.acquire_read(ipc.lock()) end, "^rwlock:acquire_read: expected a rwlock as self")
t.eq({rw:with_read(function(a, b) return a + b, rw:readers() end, 1, 2)}, {3, 1})
t.eq(rw:with_write(function() return rw:readers() end), 0)
t.raises(function() rw:with_write(function() error("inside") end) end, "inside")
t.eq(rw:acquire_write(0), true, "with_write gave the write back when its function raised")
rw:release_write()

-- Readers share it: two children meet at a barrier while both read.
local met = ipc.barrier(2)
local function meet_reading()
  rw:with_read(function() assert(met:wait(30), "the other reader never came") end)
end
local a, b = ipc.spawn(meet_reading), ipc.spawn(meet_reading)
a:join() b:join()
t.eq({a.exitcode, b.exitcode}, {0, 0})

-- A writer waits for the readers; a reader waits for the writer.
rw:acquire_read()
local tried = ipc.event()
local writer = ipc.spawn(function()
  assert(rw:acquire_write(0.2) == false, "wrote while a process read")
  tried:set()
  assert(rw:acquire_write(30), "never wrote")
  rw:release_write()
end)
tried:wait()
rw:release_read()
writer:join()
t.eq(writer.exitcode, 0)
local wrote, release = ipc.event(), ipc.event()
writer = ipc.spawn(function()
  rw:acquire_write()
  wrote:set()
  release:wait()
  rw:release_write()
end)
wrote:wait()
t.eq(rw:acquire_read(0.2), false, "read while a process wrote")
release:set()
t.eq(rw:acquire_read(30), true)
rw:release_read()
writer:join()

-- A writer excludes: two fields always change together, and no update is lost.
local pair, count = ipc.array("q", 2), ipc.value("q", 0)
local procs = {}
for _ = 1, 3 do
  procs[#procs + 1] = ipc.spawn(function()
    for _ = 1, 200 do
      rw:with_write(function()
        local n = count.value
        pair[1] = pair[1] + 1
        pair[2] = pair[2] + 1
        count.value = n + 1
      end)
    end
  end)
  procs[#procs + 1] = ipc.spawn(function()
    for _ = 1, 200 do
      rw:with_read(function() assert(pair[1] == pair[2], "a reader saw half a write") end)
    end
  end)
end
for _, p in ipairs(procs) do p:join() t.eq(p.exitcode, 0) end
t.eq(count.value, 600)

-- A dead writer, a dead reader: the lock is free again (the kernel releases robust
-- mutexes; the next taker is told, and a warning names the dead process).
local holding, never = ipc.event(), ipc.event()
for _, role in ipairs({"write", "read"}) do
  holding:clear()
  local victim = ipc.spawn(function()
    rw["acquire_" .. role](rw)
    holding:set()
    never:wait()
  end)
  holding:wait()
  victim:kill()
  victim:join()
  t.eq(rw:acquire_write(30), true, "a dead " .. role .. "r left it held")
  rw:release_write()
  t.eq(rw:readers(), 0)
end

-- Killed at random moments while they read and write, holders leave nothing held.
math.randomseed(t.seed())
for _ = 1, 5 do
  local victims = {}
  for k = 1, 4 do
    victims[k] = ipc.spawn(function()
      while true do
        if k % 2 == 0 then
          rw:with_write(function() end)
        else
          rw:with_read(function() rw:with_read(function() end) end)
        end
      end
    end)
  end
  ipc.sleep(math.random() * 0.03)
  for _, v in ipairs(victims) do
    v:kill()
    v:join()
  end
  t.eq(rw:acquire_write(30), true, "frozen after the kills")
  rw:release_write()
  local survivor = ipc.spawn(function()
    for _ = 1, 10 do rw:with_read(function() end) rw:with_write(function() end) end
  end)
  t.eq(survivor:join(30) and survivor.exitcode, 0)
end
print("rwlock ok")
