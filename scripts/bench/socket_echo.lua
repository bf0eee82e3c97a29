-- Echo round trips over a Unix stream socket: the client sends 8 bytes, the server
-- sends them back, N times.
local ipc = require("ipc")
local n = tonumber(arg[1]) or 50000
local path = string.format("/tmp/ipcplay-bench-%d.sock", ipc.current().pid)
local srv = ipc.unix.listen(path)
local server = ipc.spawn(function()
  local c = srv:accept()
  while true do
    local data = c:recv(64)
    if not data then break end
    c:send(data)
  end
end)
local c = assert(ipc.unix.connect(path))
local t0 = ipc.now()
for _ = 1, n do
  c:send("12345678")
  local got = #c:recv(64)
  while got < 8 do got = got + #c:recv(64) end
end
local dt = ipc.now() - t0
c:close()
server:join()
srv:close()
print(string.format("socket_echo %d %.6f", n, dt))
