-- One sender, one receiver, N small integers through a simplex pipe.
local ipc = require("ipc")
local n = tonumber(arg[1]) or 200000
local r, w = ipc.pipe(false)
local receiver = ipc.spawn(function()
  w:close()
  for _ = 1, n do r:recv() end
end)
r:close()
local t0 = ipc.now()
for i = 1, n do w:send(i) end
receiver:join()
print(string.format("pipe_stream %d %.6f", n, ipc.now() - t0))
