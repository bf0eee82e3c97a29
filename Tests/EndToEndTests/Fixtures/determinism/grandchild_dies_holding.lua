-- A grandchild ends holding a lock its grandparent waits for.
local m = ipc.lock({name = "m"})
local p = ipc.spawn(function()
  local g = ipc.spawn(function() m:acquire(); print("grandchild holds m") end)
  g:join(); print("grandchild exitcode", g.exitcode)
end)
p:join(); m:acquire(); print("main has m")
