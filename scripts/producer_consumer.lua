-- 消息队列 (message queue): two producers and one consumer share a queue of size 2.
-- A port of the reference notes' multiprocessing.Queue example, printing the same texts.
--
--   ipcplay scripts/producer_consumer.lua
--   ipcplay run --time-scale 0.01 scripts/producer_consumer.lua   (the same, 100x faster)
local ipc = require("ipc")

local function producer(name, queue)
  for _, value in ipairs({"A", "B", "C"}) do
    ipc.sleep(1)
    local product = name .. "的" .. value
    queue:put(product)              -- blocks while the queue already holds 2 items
    print(string.format("%s已被添加至队列中", product))
  end
end

local function consumer(queue)
  while true do
    local product = queue:get()
    -- 检测到结束标志后跳出死循环: the nil sentinel ends the consumer.
    -- (The notes warn that this is not always reliable: see joinable_queue.lua.)
    if product == nil then break end
    ipc.sleep(1.2)
    print(product .. "已被取出")
  end
end

local que = ipc.queue(2)

local p1 = ipc.process{target = producer, args = {"p1", que}}
local p2 = ipc.process{target = producer, args = {"p2", que}}
local c1 = ipc.process{target = consumer, args = {que}}
p1:start()
p2:start()
c1:start()
p1:join()
p2:join()

-- 放入消费者结束标志: put the consumer's end marker.
que:put(nil)
