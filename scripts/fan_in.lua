-- Fan-in: one process waits on several pipes and a queue at once with ipc.wait, and
-- handles whatever is ready first.
--
--   ipcplay scripts/fan_in.lua
local ipc = require("ipc")

local sources = {}
local senders = {}
for i = 1, 3 do
  local r, w = ipc.pipe(false)
  sources[i] = r
  senders[i] = ipc.spawn(function()
    for n = 1, 3 do
      ipc.sleep(0.1 * i + 0.05 * n)
      w:send(string.format("pipe %d message %d", i, n))
    end
    w:close()
  end)
  w:close()   -- the parent does not send on it; the end of stream needs every copy closed
end
local alarms = ipc.queue()
sources[4] = alarms
local alarm = ipc.spawn(function()
  for n = 1, 2 do ipc.sleep(0.25 * n) alarms:put("alarm " .. n) end
end)

local names = {"pipe 1", "pipe 2", "pipe 3", "queue"}
local open, received = 3, 0
while open > 0 or received < 2 do
  local ready = ipc.wait(sources, 5)
  if #ready == 0 then print("nothing for 5 seconds") break end
  for _, source in ipairs(ready) do
    local which
    for i, s in ipairs(sources) do if s == source then which = i end end
    if source == alarms then
      print(string.format("[%s] %s", names[which], alarms:get()))
      received = received + 1
    else
      local msg, err = source:recv()
      if err == "closed" then
        print(string.format("[%s] closed", names[which]))
        table.remove(sources, which)
        table.remove(names, which)
        open = open - 1
      else
        print(string.format("[%s] %s", names[which], msg))
      end
    end
  end
end
for _, p in ipairs(senders) do p:join() end
alarm:join()
