-- 共享内存 (shared memory): a port of the reference notes' Value/Array example.
-- 在内中开辟一块空间，进程可以写入内容和读取内容完成通信，但是每次写入会覆盖之前内容
-- (a block of memory that processes write to and read from; each write replaces the
-- previous content).
--
--   ipcplay scripts/shared_memory.lua
local ipc = require("ipc")

-- 开辟单个共享内存空间: one shared scalar. ctype为C结构缩写 (the typecode is a C type's
-- abbreviation: 'i' is a C int).
local obj = ipc.value("i", 0)

-- 开辟数组共享内存空间: a shared array. data为列表，列表内各元素数据类型一致 (the data is a
-- list whose elements all have one type).
local arr = ipc.array("d", {1.5, 2.5, 3.5})

local writer = ipc.spawn(function()
  for i = 1, 3 do
    -- 共享对象的值可通过obj.value进行修改 (the value is changed through obj.value)
    obj.value = i * 100
    print(string.format("writer: obj.value = %d", obj.value))
    ipc.sleep(0.2)
  end
  -- 共享对象的值只能通过索引修改，长度不能变 (array elements change by index; the length
  -- is fixed)
  for i = 1, #arr do arr[i] = arr[i] * 2 end
  print("writer: doubled every element of the array")
end)

ipc.sleep(0.1)
for _ = 1, 3 do
  -- 每次写入会覆盖之前内容: the reader sees only the latest write.
  print(string.format("reader: obj.value is %d", obj.value))
  ipc.sleep(0.2)
end
writer:join()
print("reader: the array is now {" .. table.concat(arr:totable(), ", ") .. "}")
local _, err = pcall(function() arr[4] = 1 end)
print("reader: arr[4] = 1 fails: " .. err)
