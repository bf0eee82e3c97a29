-- JoinableQueue: producers wait until every item they put has been marked done, so
-- nobody needs an end marker. A port of the reference notes' example (same texts).
--
--   ipcplay scripts/joinable_queue.lua
local ipc = require("ipc")

local function producer(name, queue)
  for _, value in ipairs({"A", "B", "C"}) do
    ipc.sleep(1)
    local product = name .. "的" .. value
    queue:put(product)
    print(string.format("%s已被添加至队列中", product))
  end
  -- 阻塞到queue中所有任务完成: block until every task in the queue is done.
  queue:join()
end

local function consumer(queue)
  while true do
    local product = queue:get()
    ipc.sleep(1.2)
    print(product .. "已被取出")
    -- 标识当前任务完成: mark this task done, which wakes the joining producers.
    queue:task_done()
  end
end

local que = ipc.joinable_queue(2)

local p1 = ipc.process{target = producer, args = {"p1", que}}
local p2 = ipc.process{target = producer, args = {"p2", que}}
-- 设置守护进程: a daemon consumer ends when the main script ends.
local c1 = ipc.process{target = consumer, args = {que}, daemon = true}
p1:start()
p2:start()
c1:start()
-- 主线程阻塞到生产者进程完成: the main script waits for the producers only.
p1:join()
p2:join()
