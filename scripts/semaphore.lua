-- 信号量 (semaphore): a port of the reference notes' example.
-- 内置的计数器，用来控制同时运行的进程数量 (a built-in counter that limits how many
-- processes run at the same time).
--
--   ipcplay scripts/semaphore.lua
local ipc = require("ipc")

-- num代表并发数量: num is how many may run at once.
local num = 2
local sem = ipc.semaphore(num)

local function worker(id)
  -- 将信号量减1 当信号量为0时阻塞: take one; block while the count is 0.
  sem:acquire()
  -- 获取信号量数量: read the count.
  print(string.format("worker %d starts (semaphore value now %d)", id, sem:get_value()))
  ipc.sleep(0.5)
  print(string.format("worker %d ends", id))
  -- 将信号量加1: give it back.
  sem:release()
end

local workers = {}
for id = 1, 5 do workers[id] = ipc.spawn(worker, id) end
for _, p in ipairs(workers) do p:join() end
print(string.format("all done, semaphore value %d", sem:get_value()))
