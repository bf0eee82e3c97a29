-- A small random program with a planted bug of depth 2, made from arg[1] (the program's
-- seed): the writer sets x, then y; the reader, having seen x = 1, asserts y = 1. The bug
-- needs the reader's read of x after the writer's write of x, and its read of y before the
-- writer's write of y. Around them, each process makes a few steps on shared values of its
-- own and of the others (noise), and the reader may read x more than once in a row, as the
-- benchmark programs do. With arg[2] == "fixed" the assertion is left out.
local seed = tonumber(arg[1]) or 1
local fixed = arg[2] == "fixed"
-- A generator of our own: math.random is the schedule's under --sched.
local state = seed * 2654435761 % 4294967296
local function rand(n) state = (state * 1103515245 + 12345) % 2147483648; return state % n + 1 end

local x = ipc.value("i", 0, {name = "x"})
local y = ipc.value("i", 0, {name = "y"})
local noise = {}
for i = 1, 3 do noise[i] = ipc.value("i", 0, {name = "n" .. i}) end

local function noiseSteps(count)
  local steps = {}
  for i = 1, count do steps[i] = {value = noise[rand(3)], write = rand(2) == 1} end
  return steps
end
local function run(steps)
  for _, s in ipairs(steps) do
    if s.write then s.value.value = s.value.value + 1 else local _ = s.value.value end
  end
end

local before, between, after = noiseSteps(rand(4) - 1), noiseSteps(rand(3) - 1), noiseSteps(rand(3) - 1)
local readerBefore, reads, readerAfter = noiseSteps(rand(4) - 1), rand(3), noiseSteps(rand(3) - 1)
local others = rand(2) - 1  -- processes that only make noise
local otherSteps = {}
for i = 1, others do otherSteps[i] = noiseSteps(rand(4)) end

local ps = {}
ps[#ps + 1] = ipc.spawn(function() run(before); x.value = 1; run(between); y.value = 1; run(after) end)
ps[#ps + 1] = ipc.spawn(function()
  run(readerBefore)
  local seen = 0
  for _ = 1, reads do seen = x.value end
  if seen == 1 and not fixed then assert(y.value == 1, "saw x = 1 but y = 0") end
  run(readerAfter)
end)
for i = 1, others do ps[#ps + 1] = ipc.spawn(function() run(otherSteps[i]) end) end
for _, p in ipairs(ps) do p:join() end
