-- Output from many processes: whole lines, never spliced, never printed twice.
local ipc = require("ipc")
local workers = tonumber(arg[1]) or 8
local lines = tonumber(arg[2]) or 200
io.write("partial line before fork, ")  -- must appear once, not once per child
io.write("completed\n")
io.write("pending ")                      -- flushed before the fork, so printed once
local ps = {}
for w = 1, workers do
  ps[w] = ipc.spawn(function()
    for i = 1, lines do
      if i % 2 == 0 then
        print(string.format("worker %d line %d %s end", w, i, string.rep("=", 100 + w)))
      else
        io.write(string.format("worker %d line %d %s end\n", w, i, string.rep("-", 3000 + w)))
      end
    end
  end)
end
for _, p in ipairs(ps) do p:join() end
print("all done")
