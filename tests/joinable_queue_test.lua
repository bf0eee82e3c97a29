-- Joinable queues: task_done and join.
local ipc = require("ipc")

local jq = ipc.joinable_queue()
assert(jq:join(0) == true, "nothing put: join returns at once")
for i = 1, 5 do jq:put(i) end
assert(jq:join(0.1) == false, "join times out while tasks are unfinished")
local worker = ipc.process{daemon = true, target = function()
  while true do
    jq:get()
    ipc.sleep(0.01)
    jq:task_done()
  end
end}
worker:start()
assert(jq:join(30) == true)
assert(jq:qsize() == 0)

-- task_done more often than items were put is an error
local j2 = ipc.joinable_queue()
j2:put("x")
assert(j2:get() == "x")
j2:task_done()
local ok, err = pcall(j2.task_done, j2)
assert(not ok and err:find("^joinable_queue:task_done: called more times"), err)

-- several joiners are all released
local j3 = ipc.joinable_queue(2)
local a, b = ipc.pipe()
j3:put(1) j3:put(2)
local joiners = {}
for k = 1, 3 do joiners[k] = ipc.spawn(function() b:send(j3:join(30)) end) end
ipc.sleep(0.1)
j3:get() j3:task_done()
j3:get() j3:task_done()
for _ = 1, 3 do assert(a:recv(30) == true) end
for _, p in ipairs(joiners) do p:join() end
print("joinable queues ok")
