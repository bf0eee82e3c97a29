-- A consumer of a joinable queue dies between get and task_done.
local jq = ipc.joinable_queue()
local c = ipc.spawn(function() local v = jq:get(); print("got", v); error("died before task_done") end)
jq:put("job"); print("join:", jq:join(3)); c:join(); print("exitcode", c.exitcode)
