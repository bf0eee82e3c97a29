-- A process ends holding an rlock twice over; two others want it.
local r = ipc.rlock({name = "r"})
local a = ipc.spawn(function() r:acquire(); r:acquire(); print("a holds r twice") end)
local b = ipc.spawn(function() r:acquire(); print("b has r"); r:release() end)
local c = ipc.spawn(function() print("c got r:", r:acquire(5)); r:release() end)
a:join(); b:join(); c:join(); print("done")
