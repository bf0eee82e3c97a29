-- ipc.event never loses a set(): every process waiting when set() is called returns
-- true, even when clear() follows before it runs again (CPython's
-- EventTests.test_set_and_clear). The waiters say they are about to wait, then the main
-- process gives them a moment to park before set(); clear().
local ipc = require("ipc")
local t = ipc.test

local e = ipc.event()
local ready = ipc.semaphore(0)
local results = ipc.queue()

-- One round: `waiters` processes wait (`timeout`: nil waits for ever), then set(); clear().
local function round(waiters, timeout)
  local ps = {}
  for k = 1, waiters do
    ps[k] = ipc.spawn(function()
      ready:release()
      results:put(e:wait(timeout))
    end)
  end
  for _ = 1, waiters do assert(ready:acquire(30)) end
  ipc.sleep(0.25)
  e:set()
  e:clear()
  for _ = 1, waiters do t.eq(results:get(30), true, "a waiter slept through set(); clear()") end
  for _, p in ipairs(ps) do p:join() end
  t.eq(e:is_set(), false)
end

-- CPython's test_set_and_clear has five waiters and a timeout; a lost wake-up shows in
-- about a third of its rounds, so there are several.
for _ = 1, 6 do round(5, 5) end
-- Waits with no timeout (a lost wake-up there is a wait for ever).
for _ = 1, 3 do round(3, nil) end

-- A wait that begins after set(); clear() waits for the next set().
t.eq(e:wait(0.1), false)

-- A waiter killed in the middle of its wait leaves nothing that changes the event: the
-- next waiters and set() behave as before.
local victim = ipc.spawn(function() ready:release() e:wait() end)
assert(ready:acquire(30))
ipc.sleep(0.2)
victim:kill()
victim:join()
t.eq(e:is_set(), false)
t.eq(e:wait(0.05), false)
local after = ipc.spawn(function() ready:release() os.exit(e:wait(10) and 0 or 1) end)
assert(ready:acquire(30))
ipc.sleep(0.2)
e:set()
after:join()
t.eq(after.exitcode, 0)
t.eq(e:is_set(), true)
t.eq(e:wait(0), true)
print("event ok")
