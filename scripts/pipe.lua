-- 管道 (pipe): one process sends a message, another receives it. A port of the
-- reference notes' multiprocessing.Pipe example, printing the same text.
--
--   ipcplay scripts/pipe.lua
local ipc = require("ipc")

-- ipc.pipe() is duplex by default: both ends can send and receive.
-- ipc.pipe(false) is one-way: the first end only receives, the second only sends.
local fd1, fd2 = ipc.pipe()

local function fun1()
  ipc.sleep(2)
  fd2:send("msg")      -- 向管道写入内容: write into the pipe
end

local function fun2()
  print(fd1:recv())    -- 阻塞形式接收: blocks until a message arrives
end

local p1 = ipc.process{target = fun1}
p1:start()
p1:join()

local p2 = ipc.process{target = fun2}
p2:start()
p2:join()
