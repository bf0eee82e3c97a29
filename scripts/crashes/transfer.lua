-- Crash lesson 1, the bug: a transfer between two accounts is two writes, a debit and
-- a credit. A lock keeps other processes out between them, but not a crash: a teller
-- killed after the debit and before the credit takes the money with it. The supervisor
-- sees the teller die (exitcode -9) and starts another one, which moves the money again
-- from what is left: the books no longer balance.
--
--   ipcplay explore --kill 1 scripts/crashes/transfer.lua
--
-- explore reports the main script's assertion ("the books hold 70, not 100"), a
-- `kill: teller before ...` line at the credit, and a replay line that kills the same
-- teller at the same call. The fix is in transfer_fixed.lua.
local ipc = require("ipc")

local checking = ipc.value("i", 100)
local savings = ipc.value("i", 0)
local books = ipc.lock()

local function transfer(amount)
  books:acquire()
  checking.value = checking.value - amount  -- debit
  savings.value = savings.value + amount    -- credit: a crash before it loses the amount
  books:release()
end

-- The supervisor: a teller that died is replaced, and the transfer tried again.
for attempt = 1, 3 do
  local teller = ipc.process{target = transfer, args = {30}, name = "teller"}
  teller:start()
  teller:join()
  if teller.exitcode == 0 then break end
  print(string.format("teller died (exitcode %d) at attempt %d; trying again", teller.exitcode, attempt))
end

local total = checking.value + savings.value
assert(total == 100, string.format("the books hold %d, not 100", total))
assert(savings.value == 30, string.format("savings hold %d, not 30", savings.value))
print("checking " .. checking.value .. ", savings " .. savings.value)
