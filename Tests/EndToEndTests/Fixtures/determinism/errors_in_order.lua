-- A child fails, then the main script fails because of it.
local v = ipc.value("i", 0)
local p = ipc.spawn(function() assert(v.value == 1, "the child saw 0") end)
p:join()
assert(v.value == 1, "the main script saw 0 too")
