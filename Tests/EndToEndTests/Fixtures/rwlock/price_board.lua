-- A planted rwlock bug: two writers reprice a board of two prices (their sum must stay
-- 100) while a reader checks it. The writers take the lock to *read*, so they share it:
-- one can read the prices between the other's two writes, and write back from stale
-- ones. price_board_fixed.lua takes it to write.
local ipc = require("ipc")
local write = ... == "fixed" and "with_write" or "with_read"

local rw = ipc.rwlock({name = "board"})
local prices = ipc.array("q", 2)
prices[1], prices[2] = 60, 40

local function reprice(delta)
  return function()
    rw[write](rw, function()
      local a, b = prices[1], prices[2]
      prices[1] = a + delta
      prices[2] = b - delta
    end)
  end
end

local writers = {ipc.spawn(reprice(5)), ipc.spawn(reprice(-3))}
local reader = ipc.spawn(function()
  rw:with_read(function() assert(prices[1] + prices[2] == 100, "the reader saw a broken board") end)
end)
for _, p in ipairs(writers) do p:join() end
reader:join()
assert(reader.exitcode == 0, "the reader failed")
assert(prices[1] + prices[2] == 100 and prices[1] == 62,
  string.format("a lost repricing: the board is %d + %d", prices[1], prices[2]))
print("board " .. prices[1] .. " + " .. prices[2])
