-- 本地套接字 (Unix domain socket), the server: a port of the reference notes' example.
-- It prints what each client sends and answers "copy! <time>".
--
--   ipcplay scripts/unix_server.lua [path] [connections]
--   (then, in another terminal: ipcplay scripts/unix_client.lua, or socat - UNIX-CONNECT:./msg.sock)
local ipc = require("ipc")

local file = arg[1] or "./msg.sock"
local connections = tonumber(arg[2])   -- serve this many clients, then stop (default: for ever)

-- 做个判断，如果文件存在则删除: a stale socket file is replaced; a live one is an error.
local socketfd = ipc.unix.listen(file, 5)

local served = 0
while connections == nil or served < connections do
  local connfd = socketfd:accept()
  while true do
    local data = connfd:recv(1024)
    if not data then break end          -- nil, "closed": the client hung up
    print(data)
    connfd:send(string.format("copy! %s", os.date("%a %b %e %H:%M:%S %Y")))
  end
  connfd:close()
  served = served + 1
end
socketfd:close()                        -- removes the socket file
