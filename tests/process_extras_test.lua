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
