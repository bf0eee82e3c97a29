-- Each process ends holding x: the next acquire takes a dead holder's lock over.
local x = ipc.lock({name = "x"})
local function t1() x:acquire(); x:release(); x:acquire() end
local a = ipc.spawn(t1); local b = ipc.spawn(t1)
a:join(); b:join(); print("both done")
