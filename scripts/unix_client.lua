-- 本地套接字 (Unix domain socket), the client: a port of the reference notes' example.
-- Reads lines from stdin, sends each to the server and prints its reply; an empty line
-- (or the end of input) ends it.
--
--   ipcplay scripts/unix_client.lua [path]
local ipc = require("ipc")

local file = arg[1] or "./msg.sock"
local clientfd, err = ipc.unix.connect(file)
if not clientfd then
  io.stderr:write("cannot connect: " .. err .. "\n")
  os.exit(1)
end

while true do
  io.write(">>>")
  io.stdout:flush()
  local msg = io.read("l")
  if not msg or msg == "" then break end
  clientfd:send(msg)
  local data = clientfd:recv(1024)
  if not data then break end
  print(data)
end

clientfd:close()
