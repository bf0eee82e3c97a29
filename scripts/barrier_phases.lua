-- Workers meet at a barrier between phases: nobody starts phase 2 before everyone has
-- finished phase 1, however long each one takes.
--
--   ipcplay scripts/barrier_phases.lua [workers] [phases]
local ipc = require("ipc")
local workers = tonumber(arg[1]) or 3
local phases = tonumber(arg[2]) or 3
local barrier = ipc.barrier(workers)
local finished = ipc.array("i", phases)       -- how many finished each phase

local function worker(id)
  for phase = 1, phases do
    ipc.sleep(0.05 * ((id + phase) % workers + 1))   -- uneven work
    finished:with_lock(function() finished[phase] = finished[phase] + 1 end)
    print(string.format("worker %d finished phase %d", id, phase))
    local index = barrier:wait()
    if index == 0 then
      -- One of them (index 0) reports for the group.
      print(string.format("-- all %d workers passed the barrier after phase %d (%d finished it)",
        workers, phase, finished[phase]))
    end
    barrier:wait()   -- keep the report before the next phase's lines
  end
end

local ps = {}
for id = 1, workers do ps[id] = ipc.spawn(worker, id) end
for _, p in ipairs(ps) do p:join() end
