-- ipc.cpu_count(), ipc.parent_process() and ipc.active_children(), as Python's.
local ipc = require("ipc")
local t = ipc.test

local n = ipc.cpu_count()
assert(math.type(n) == "integer" and n >= 1, "cpu_count: " .. tostring(n))

-- The main process has no parent; a child's parent is the process that started it.
t.eq(ipc.parent_process(), nil)
local me = ipc.current()
local seen = ipc.queue()
local grandchild_parent = ipc.queue()
local child = ipc.spawn(function()
  seen:put(ipc.parent_process())
  local inner = ipc.spawn(function() grandchild_parent:put(ipc.parent_process()) end, nil)
  inner:join()
end)
t.eq(seen:get(30), {name = "MainProcess", pid = me.pid})
t.eq(grandchild_parent:get(30), {name = child.name, pid = child.pid})
child:join()

-- active_children: the started, not ended children, as the script's own objects.
t.eq(#ipc.active_children(), 0)
local hold = ipc.event()
local unstarted = ipc.process{target = function() end}
local a = ipc.spawn(function() hold:wait() end)
local b = ipc.spawn(function() hold:wait() end)
local quick = ipc.spawn(function() end)
quick:join()
local list = ipc.active_children()
t.eq(#list, 2)
t.eq(list[1] == a and list[2] == b, true, "the script's own objects, in start order")
-- A child that ended without a join is reaped by the call (its exitcode is then set).
local ended = ipc.spawn(function() os.exit(3) end)
while #ipc.active_children() > 2 do ipc.sleep(0.01) end
t.eq(ended.exitcode, 3)
-- A child whose object the script dropped still counts.
ipc.spawn(function() hold:wait() end)
collectgarbage()
collectgarbage()
list = ipc.active_children()
t.eq(#list, 3)
t.eq(list[3]:is_alive(), true)
hold:set()
for _, p in ipairs(list) do p:join() end
t.eq(#ipc.active_children(), 0)
t.eq(unstarted:is_alive(), false)
-- A child's own children are its own.
local own = ipc.queue()
local parent = ipc.spawn(function() own:put(#ipc.active_children()) end)
t.eq(own:get(30), 0)
parent:join()
t.raises(function() ipc.active_children(1) end, "^[^\n]*ipc.active_children: takes no arguments")
print("process extras ok")

-- A Process in ipc.wait is ready once it has ended (Python's p.sentinel).
local go = ipc.event()
local q2 = ipc.queue()
local slow = ipc.spawn(function() go:wait() end)
local fast = ipc.spawn(function() end)
local ready = ipc.wait({slow, q2, fast}, 30)
t.eq(#ready, 1)
t.eq(ready[1] == fast, true)
t.eq(fast.exitcode, 0, "ipc.wait reaped it")
t.eq(#ipc.wait({slow}, 0.05), 0, "a running process is not ready")
go:set()
ready = ipc.wait({q2, slow}, 30)
t.eq(ready[1] == slow, true)
t.eq(#ipc.wait({slow, fast}, 0), 2, "an ended process stays ready")
slow:join()
t.raises(function() ipc.wait({ipc.process{target = print}}) end,
  "ipc.wait: item 1 is Process%-%d+, which was never started")
local foreign = ipc.queue()
local outer = ipc.spawn(function()
  local ok, err = pcall(ipc.wait, {slow}, 0)
  foreign:put(not ok and err:find("which this process did not start") ~= nil)
end)
t.eq(foreign:get(30), true)
outer:join()
print("process wait ok")
