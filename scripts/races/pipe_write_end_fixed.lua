-- Race lesson 8, the fix: every process closes the pipe ends it does not use, as soon as
-- the processes that need them have started. The main process closes its copy of the
-- numbers' write end too: once the producer closes its own, no copy is left, the squarer
-- sees the end of the numbers, closes the squares' write end, and the main process sees
-- the end of the squares. (Python's Pipe asks the same: after a fork, both processes
-- hold both ends.)
--
--   ipcplay explore --runs 1000 scripts/races/pipe_write_end_fixed.lua
--   ipcplay explore --exhaustive scripts/races/pipe_write_end_fixed.lua
--
-- The bug is in pipe_write_end.lua.
local ipc = require("ipc")
local count = tonumber(arg[1]) or 3

local numbers_in, numbers_out = ipc.pipe(false, {name = "numbers"})
local squares_in, squares_out = ipc.pipe(false, {name = "squares"})

local function produce()
  numbers_in:close()
  squares_in:close()
  squares_out:close()
  for n = 1, count do numbers_out:send(n) end
  numbers_out:close()
end

local function square()
  numbers_out:close()
  squares_in:close()
  while true do
    local n = numbers_in:recv()      -- nil, "closed" at the end of the stream
    if n == nil then break end
    squares_out:send(n * n)
  end
  squares_out:close()
end

local producer = ipc.spawn(produce)
local squarer = ipc.spawn(square)
numbers_in:close()
numbers_out:close()                  -- every end this process does not use, both pipes
squares_out:close()

local total = 0
while true do
  local s = squares_in:recv()
  if s == nil then break end
  total = total + s
end
producer:join()
squarer:join()

local expected = count * (count + 1) * (2 * count + 1) // 6
assert(total == expected, string.format("the sum of the squares is %d, expected %d", total, expected))
print("sum of squares: " .. total)
