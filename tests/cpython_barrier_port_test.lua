-- CPython's lock_tests.BarrierTests, ported against docs/api.md (a broken or timed-out
-- wait returns nil and a reason instead of raising BrokenBarrierError).
local ipc = require("ipc")
local t = ipc.test
local N = 5

-- Runs f(k) in N processes (k = 1..N) and joins them; each must end with exit code 0.
local function run_processes(f)
  local ps = {}
  for k = 1, N do ps[k] = ipc.spawn(f, k) end
  for _, p in ipairs(ps) do
    assert(p:join(60), "a party did not end")
    t.eq(p.exitcode, 0, "a party failed")
  end
end

-- A party's second wait, counted: it passed, or it was released with "broken".
local function count_second_wait(b, passed, broken)
  local ok, why = b:wait(30)
  if ok then passed:add(1) elseif why == "broken" then broken:add(1) end
end

-- The middle party aborts instead of waiting again; the others' second waits are counted.
local function abort_in_the_middle(b, passed, broken)
  run_processes(function()
    if b:wait(30) == N // 2 then
      b:abort()
      return
    end
    count_second_wait(b, passed, broken)
  end)
end

-- Every party passes b once more.
local function pass_again(b, again)
  assert(b:wait(30))
  again:add(1)
end

-- No second wait passed, N-1 were broken, then all N passed again.
local function expect_broken_then_passed(passed, broken, again)
  t.eq(passed.value, 0)
  t.eq(broken.value, N - 1)
  t.eq(again.value, N)
end

-- test_barrier / test_wait_return: several passages; index 0 once per passage.
do
  local b = ipc.barrier(N)
  local zeros = ipc.value("i", 0)
  local passes = 3
  run_processes(function()
    for _ = 1, passes do
      local i = assert(b:wait(30))
      if i == 0 then zeros:add(1) end
    end
  end)
  t.eq(zeros.value, passes)
  t.eq(b.n_waiting, 0)
  t.eq(b.broken, false)
end

-- test_action
do
  local results = ipc.value("i", 0)
  local b = ipc.barrier(N, {action = function() results:add(1) end})
  local wrong = ipc.value("i", 0)
  run_processes(function()
    b:wait(30)
    if results.value ~= 1 then wrong:add(1) end
  end)
  t.eq(wrong.value, 0)
  t.eq(results.value, 1)
end

-- test_abort: one party aborts instead of waiting again; the others get "broken".
do
  local b = ipc.barrier(N)
  local passed, broken = ipc.value("i", 0), ipc.value("i", 0)
  abort_in_the_middle(b, passed, broken)
  t.eq(passed.value, 0)
  t.eq(broken.value, N - 1)
  t.eq(b.broken, true)
end

-- test_reset: a reset while N-1 wait releases them broken; then all pass again.
do
  local b = ipc.barrier(N)
  local passed, broken, again = ipc.value("i", 0), ipc.value("i", 0), ipc.value("i", 0)
  run_processes(function()
    local i = b:wait(30)
    if i == N // 2 then
      while b.n_waiting < N - 1 do ipc.sleep(0.001) end
      b:reset()
    else
      count_second_wait(b, passed, broken)
    end
    pass_again(b, again)
  end)
  expect_broken_then_passed(passed, broken, again)
end

-- test_abort_and_reset
do
  local b = ipc.barrier(N)
  local b2 = ipc.barrier(N)
  local passed, broken, again = ipc.value("i", 0), ipc.value("i", 0), ipc.value("i", 0)
  abort_in_the_middle(b, passed, broken)
  b:reset()
  run_processes(function()
    if b2:wait(30) == N // 2 then b:reset() end
    b2:wait(30)
    pass_again(b, again)
  end)
  expect_broken_then_passed(passed, broken, again)
end

-- test_timeout: one party late; a short timeout breaks the barrier for all.
do
  local b = ipc.barrier(N)
  local failed = ipc.value("i", 0)
  run_processes(function(k)
    local i = b:wait(30)
    if i == N // 2 then ipc.sleep(1.0) end
    local ok = b:wait(0.5)
    if not ok then failed:add(1) end
    assert(k)
  end)
  t.eq(failed.value, N)
end

-- test_default_timeout
do
  local b = ipc.barrier(N, {timeout = 0.3})
  local failed = ipc.value("i", 0)
  run_processes(function()
    local i = b:wait()
    if i == N // 2 then ipc.sleep(1.0) end
    if not b:wait() then failed:add(1) end
  end)
  t.eq(failed.value, N)
end

-- test_single_thread
do
  local b = ipc.barrier(1)
  t.eq(b:wait(), 0)
  t.eq(b:wait(), 0)
end

-- test_action raising: the party that ran it gets the error, the others "broken".
do
  local b = ipc.barrier(N, {action = function() error("from the action") end})
  local raised, broken = ipc.value("i", 0), ipc.value("i", 0)
  run_processes(function()
    local ok, r, why = pcall(b.wait, b, 30)
    if not ok then
      assert(tostring(r):find("from the action"))
      raised:add(1)
    elseif r == nil and why == "broken" then
      broken:add(1)
    end
  end)
  t.eq(raised.value, 1)
  t.eq(broken.value, N - 1)
end
print("barrier port ok")
