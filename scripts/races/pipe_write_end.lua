-- Race lesson 8, the bug: a pipeline whose write end is left open. A producer sends
-- numbers down one pipe, a squarer reads them until the end of the stream and sends their
-- squares down a second pipe, and the main process adds up the squares. The end of a
-- pipe's stream comes only when every copy of its write end is closed, and every process
-- started after the pipe was made holds a copy. The main process closes the ends it does
-- not use of the squares pipe, but forgets its copy of the numbers' write end. So the
-- squarer never sees the end of the numbers, and the main process never sees the end of
-- the squares, which the squarer would close once done:
--
--   producer:  numbers:send(1..3), close          (its copy is closed)
--   squarer:   numbers:recv() ... waits for the end of numbers: main still holds its write end
--   main:      squares:recv() ... waits for the end of squares: the squarer holds its write end
--
-- This is no race: every schedule deadlocks. ipcplay names the cycle of who waits for whom:
--   cycle: MainProcess waits for squares held by Process-2; Process-2 waits for numbers held by MainProcess
--
--   ipcplay run scripts/races/pipe_write_end.lua       (reports the deadlock, exits 124)
--   ipcplay explore scripts/races/pipe_write_end.lua
--
-- explanation: cycle
--
-- The fix is in pipe_write_end_fixed.lua.
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
squares_out:close()
-- BUG: numbers_out is still open here: the squarer will wait for its end for ever.

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
