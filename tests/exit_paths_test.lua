-- The host waits for non-daemon children and ends daemon ones; children's own children
-- are waited for too. Run by the Swift suite, which checks that nothing survives.
local ipc = require("ipc")
local mode = arg[1] or "normal"
local a, b = ipc.pipe(false) -- luacheck: ignore 211/a 211/b (both ends stay open through every way out)

local slow = ipc.spawn(function()
  ipc.sleep(0.3)
  print("non-daemon child finished")
end)
local daemon = ipc.process{target = function()
  print("daemon started")
  while true do ipc.sleep(0.05) end
end, daemon = true}
daemon:start()
local parent = ipc.spawn(function()
  local grandchild = ipc.spawn(function() ipc.sleep(0.2) print("grandchild finished") end)
  print("pids " .. ipc.current().pid .. " " .. grandchild.pid)
end)
print("pids " .. slow.pid .. " " .. daemon.pid .. " " .. parent.pid)
io.stdout:flush()
ipc.sleep(0.1)
if mode == "error" then error("main script fails on purpose") end
if mode == "exit" then os.exit(3) end
