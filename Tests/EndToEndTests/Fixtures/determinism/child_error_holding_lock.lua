-- A child fails while holding m; the other acquires it (taken over).
local m = ipc.lock({name = "m"})
local a = ipc.spawn(function() m:acquire(); assert(false, "child failed while holding m") end)
local b = ipc.spawn(function() m:acquire(); m:release(); print("b done") end)
a:join(); b:join(); print("exitcodes", a.exitcode, b.exitcode)
