-- Crash lesson 1, the fix: an intent journal. Before touching the accounts, the teller
-- writes what it is about to do into a shared array (the balances it starts from, then
-- the state "in progress", one write); after the credit it sets the state to "done".
-- Whoever finds "in progress" after a teller died (here the supervisor, before it tries
-- again) puts the balances back as they were: a transfer happens completely or not at
-- all, wherever the teller is killed, even while it holds the lock (the next acquire takes
-- it over). And the supervisor retries only a transfer the journal does not say is done:
-- a teller killed after its commit (before its release, or its end) is not run twice.
-- (explore --kill 1 found that second bug in a first version of this fix.)
--
--   ipcplay explore --kill 1 --runs 1000 scripts/crashes/transfer_fixed.lua
--
-- explore reports no failure: "1000 schedules, ... no failure".
local ipc = require("ipc")

local checking = ipc.value("i", 100)
local savings = ipc.value("i", 0)
local books = ipc.lock()
-- journal[1]: 0 not begun, 1 in progress, 2 done; [2], [3]: the balances it started from.
local journal = ipc.array("i", 3)

local function transfer(amount)
  books:acquire()
  journal[2] = checking.value
  journal[3] = savings.value
  journal[1] = 1                            -- the intent: from here on, undone if cut
  checking.value = checking.value - amount  -- debit
  savings.value = savings.value + amount    -- credit
  journal[1] = 2                            -- done: the commit, one write
  books:release()
end

-- Undoes a transfer a dead teller left half done.
local function repair()
  books:acquire()
  if journal[1] == 1 then
    checking.value = journal[2]
    savings.value = journal[3]
    journal[1] = 0
    print("repaired a transfer cut by a crash")
  end
  books:release()
end

local attempt = 0
while journal[1] ~= 2 do
  attempt = attempt + 1
  assert(attempt <= 3, "three tellers died")
  local teller = ipc.process{target = transfer, args = {30}, name = "teller"}
  teller:start()
  teller:join()
  if teller.exitcode ~= 0 then
    print(string.format("teller died (exitcode %d) at attempt %d; trying again", teller.exitcode, attempt))
    repair()
  end
end

local total = checking.value + savings.value
assert(total == 100, string.format("the books hold %d, not 100", total))
assert(savings.value == 30, string.format("savings hold %d, not 30", savings.value))
print("checking " .. checking.value .. ", savings " .. savings.value)
