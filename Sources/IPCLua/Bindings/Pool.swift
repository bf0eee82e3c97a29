import CLua
import CLuaShim

/// `ipc.pool([n])`: Python's `multiprocessing.Pool`, written in Lua on the module's own
/// queues and processes, so that each of its steps is an ordinary call (traced, and a
/// step under a controlled scheduler).
///
/// Functions cannot travel through a queue, and workers are forks: a worker knows the
/// functions the pool had registered when it was forked. So workers start at the first
/// task, and a task with a function the pool has not seen yet retires the workers (each
/// finishes what it was given, then exits) and forks new ones, which know it.
///
/// Each worker has its own inbox: the pool knows which tasks each worker holds, so when a
/// worker dies (killed, or `os.exit` in a task), the pool fails the task it was running
/// with an error that says so, gives the tasks it had not started to the others, and
/// forks a replacement. The pool notices a death while it waits for results (`ipc.wait`
/// on the results queue and the workers).
enum Pool {
    static let source = #"""
    local clock, ipc = ...

    local Pool = {}
    Pool.__index = Pool
    local Result = {}
    Result.__index = Result

    local function worker_main(inbox, results, functions)
      while true do
        local task = inbox:get()
        if task.stop then return end
        local out = table.pack(xpcall(functions[task.fn], debug.traceback, table.unpack(task.args, 1, task.args.n)))
        local reply = {id = task.id, ok = out[1], n = out.n - 1, values = table.move(out, 2, out.n, 1, {})}
        if not out[1] then reply.values = {tostring(out[2])} ; reply.n = 1 end
        local sent, why = pcall(results.put, results, reply)
        if not sent then
          results:put({id = task.id, ok = false, n = 1, values = {"pool: the task's result cannot be sent back: " .. tostring(why)}})
        end
      end
    end

    local function check_no_more(call, max, ...)
      for k = max + 1, select("#", ...) do
        if select(k, ...) ~= nil then error(call .. ": takes at most " .. max .. " arguments, got " .. k, 3) end
      end
    end

    local function start_worker(pool)
      local inbox = ipc.queue()
      local process = ipc.process{target = worker_main, args = {inbox, pool.results, pool.functions, n = 3}, daemon = true}
      process:start()
      local worker = {process = process, inbox = inbox, tasks = {}, held = 0}
      pool.workers[#pool.workers + 1] = worker
      return worker
    end

    local function current_workers(pool)
      local list = {}
      for _, w in ipairs(pool.workers) do if not w.retiring then list[#list + 1] = w end end
      return list
    end

    local function settle(pool, id, ok, n, values)
      local task = pool.tasks[id]
      if not task then return end
      pool.tasks[id] = nil
      pool.unfinished = pool.unfinished - 1
      if task.worker then
        task.worker.tasks[id] = nil
        task.worker.held = task.worker.held - 1
      end
      local r = task.result
      r.done, r.ok, r.n, r.values = true, ok, n, values
      if r.on_done then r.on_done(r) end
    end

    local function assign(pool, task)
      local best
      for _, w in ipairs(current_workers(pool)) do
        if not best or w.held < best.held then best = w end
      end
      task.worker = best
      best.tasks[task.id] = true
      best.held = best.held + 1
      best.inbox:put({id = task.id, fn = task.fn, args = task.args})
    end

    local function fill(pool)
      for _ = #current_workers(pool) + 1, pool.size do start_worker(pool) end
    end

    local function drain_results(pool)
      while true do
        local reply, err = pool.results:get_nowait()
        if err then return end
        settle(pool, reply.id, reply.ok, reply.n, reply.values)
      end
    end

    -- A worker ended: it was retired (and did all it was given), or it died.
    local function worker_ended(pool, w)
      drain_results(pool)
      for k, x in ipairs(pool.workers) do if x == w then table.remove(pool.workers, k) break end end
      local unstarted = {}
      while true do
        local item, err = w.inbox:get_nowait()
        if err then break end
        if not item.stop then unstarted[item.id] = true end
      end
      local why = string.format("pool: worker %s died (exitcode %s) while running this task", w.process.name, tostring(w.process.exitcode))
      for id in pairs(w.tasks) do
        if not unstarted[id] then settle(pool, id, false, 1, {why}) end
      end
      if next(unstarted) == nil then return end
      if pool.state == "terminated" then return end
      fill(pool)
      local ids = {}
      for id in pairs(unstarted) do ids[#ids + 1] = id end
      table.sort(ids)
      for _, id in ipairs(ids) do
        local task = pool.tasks[id]
        w.tasks[id], w.held = nil, w.held - 1
        assign(pool, task)
      end
    end

    -- Waits until some result arrives or some worker ends (or the deadline); handles them.
    local function pump(pool, deadline)
      local list, owners = {pool.results}, {}
      for _, w in ipairs(pool.workers) do
        list[#list + 1] = w.process
        owners[w.process] = w
      end
      local timeout = deadline and math.max(0, deadline - clock()) or nil
      for _, item in ipairs(ipc.wait(list, timeout)) do
        if owners[item] then worker_ended(pool, owners[item]) end
      end
      drain_results(pool)
    end

    local function submit(pool, call, fn, args)
      if pool.state ~= "running" then error(call .. ": the pool is " .. pool.state, 3) end
      if type(fn) ~= "function" then error(call .. ": expected a function, got " .. type(fn), 3) end
      if not pool.fn_ids[fn] then
        -- The workers were forked before this function existed for the pool: new ones.
        pool.functions[#pool.functions + 1] = fn
        pool.fn_ids[fn] = #pool.functions
        for _, w in ipairs(current_workers(pool)) do
          w.retiring = true
          w.inbox:put({stop = true})
        end
      end
      fill(pool)
      pool.next_id = pool.next_id + 1
      local result = setmetatable({pool = pool, id = pool.next_id, done = false}, Result)
      local task = {id = pool.next_id, fn = pool.fn_ids[fn], args = args, result = result}
      pool.tasks[task.id] = task
      pool.unfinished = pool.unfinished + 1
      local ok, err = pcall(assign, pool, task)
      if not ok then
        settle(pool, task.id, false, 1, {err})
        error(call .. ": " .. tostring(err):gsub("^[^\n]-: ", "", 1), 3)
      end
      return result
    end

    local function packed(call, args)
      if args == nil then return {n = 0} end
      if type(args) ~= "table" then error(call .. ": args must be a table, got " .. type(args), 3) end
      local copy = table.move(args, 1, #args, 1, {})
      copy.n = args.n or #args
      return copy
    end

    --- ipc.pool([n]): n worker processes (default: ipc.cpu_count()).
    local function new(n, ...)
      check_no_more("ipc.pool", 1, n, ...)
      if n == nil then n = ipc.cpu_count() end
      if math.type(n) ~= "integer" then
        if type(n) == "number" and n == math.floor(n) then n = math.tointeger(n) else
          error("ipc.pool: n must be an integer, got " .. (type(n) == "number" and tostring(n) or type(n)), 2)
        end
      end
      if n < 1 then error("ipc.pool: n must be at least 1, got " .. n, 2) end
      return setmetatable({
        size = n, state = "running", workers = {}, functions = {}, fn_ids = {}, tasks = {},
        unfinished = 0, next_id = 0, results = ipc.queue(0, {name = "pool results"}),
      }, Pool)
    end

    function Pool:apply_async(fn, args, ...)
      check_no_more("pool:apply_async", 2, fn, args, ...)
      return submit(self, "pool:apply_async", fn, packed("pool:apply_async", args))
    end

    function Pool:apply(fn, args, ...)
      check_no_more("pool:apply", 2, fn, args, ...)
      return submit(self, "pool:apply", fn, packed("pool:apply", args)):get()
    end

    local function submit_all(pool, call, fn, list, star)
      if type(list) ~= "table" then error(call .. ": expected a list, got " .. type(list), 3) end
      local results = {}
      for k = 1, #list do
        local args = star and packed(call, list[k]) or {list[k], n = 1}
        results[k] = submit(pool, call, fn, args)
      end
      return results
    end

    -- Each result's first value, in order (waiting for each).
    local function first_values(results)
      local out = {}
      for k, r in ipairs(results) do out[k] = (r:get()) end
      return out
    end

    --- pool:map(fn, list): {fn(list[1]), fn(list[2]), ...} (each call's first result), in order.
    function Pool:map(fn, list, ...)
      check_no_more("pool:map", 2, fn, list, ...)
      return first_values(submit_all(self, "pool:map", fn, list, false))
    end

    --- pool:starmap(fn, list): {fn(table.unpack(list[1])), ...}.
    function Pool:starmap(fn, list, ...)
      check_no_more("pool:starmap", 2, fn, list, ...)
      return first_values(submit_all(self, "pool:starmap", fn, list, true))
    end

    --- pool:imap(fn, list): an iterator over the results, in order.
    function Pool:imap(fn, list, ...)
      check_no_more("pool:imap", 2, fn, list, ...)
      local results, k = submit_all(self, "pool:imap", fn, list, false), 0
      return function()
        k = k + 1
        if results[k] then return (results[k]:get()) end
      end
    end

    --- pool:imap_unordered(fn, list): an iterator over the results, as they come.
    function Pool:imap_unordered(fn, list, ...)
      check_no_more("pool:imap_unordered", 2, fn, list, ...)
      local results = submit_all(self, "pool:imap_unordered", fn, list, false)
      -- The results done and not yet given, in the order they came.
      local done, first, last = {}, 1, 0
      local function came(r) last = last + 1; done[last] = r end
      for _, r in ipairs(results) do
        if r.done then came(r) else r.on_done = came end
      end
      return function()
        if first > #results then return nil end
        while first > last do pump(self, nil) end
        local r = done[first]
        done[first], first = nil, first + 1
        return (r:get())
      end
    end

    --- pool:close(): no more tasks; the workers end once they have done theirs.
    function Pool:close(...)
      check_no_more("pool:close", 0, ...)
      if self.state == "running" then self.state = "closed" end
    end

    --- pool:terminate(): ends the workers now; tasks not done fail.
    function Pool:terminate(...)
      check_no_more("pool:terminate", 0, ...)
      if self.state == "terminated" then return end
      self.state = "terminated"
      for _, w in ipairs(self.workers) do w.process:terminate() end
      for _, w in ipairs(self.workers) do w.process:join() end
      self.workers = {}
      drain_results(self)
      local ids = {}
      for id in pairs(self.tasks) do ids[#ids + 1] = id end
      for _, id in ipairs(ids) do settle(self, id, false, 1, {"pool: terminated before this task was done"}) end
    end

    --- pool:join([timeout]): after close() or terminate(), waits for the workers to end.
    function Pool:join(timeout, ...)
      check_no_more("pool:join", 1, timeout, ...)
      if self.state == "running" then error("pool:join: close() or terminate() the pool first", 2) end
      local deadline = timeout and clock() + timeout
      while self.unfinished > 0 do
        if deadline and clock() >= deadline then return false end
        pump(self, deadline)
      end
      for _, w in ipairs(self.workers) do
        if not w.stopped then w.stopped = true; w.inbox:put({stop = true}) end
      end
      while #self.workers > 0 do
        local w = self.workers[1]
        local left = deadline and math.max(0, deadline - clock())
        if not w.process:join(left) then return false end
        table.remove(self.workers, 1)
      end
      return true
    end

    Pool.__close = Pool.terminate
    Pool.__name = "ipc.Pool"
    function Pool:__tostring()
      return string.format("<pool %d workers %s, %d tasks unfinished>", self.size, self.state, self.unfinished)
    end

    --- r:get([timeout]): the task's results; raises its error; nil, "timeout".
    function Result:get(timeout, ...)
      check_no_more("result:get", 1, timeout, ...)
      if timeout ~= nil and type(timeout) ~= "number" then
        error("result:get: timeout must be a number of seconds, got " .. type(timeout), 2)
      end
      local deadline = timeout and clock() + timeout
      while not self.done do
        if deadline and clock() >= deadline then return nil, "timeout" end
        pump(self.pool, deadline)
      end
      if not self.ok then error(self.values[1], 0) end
      return table.unpack(self.values, 1, self.n)
    end

    --- r:wait([timeout]): true once the task is done.
    function Result:wait(timeout, ...)
      check_no_more("result:wait", 1, timeout, ...)
      local deadline = timeout and clock() + timeout
      while not self.done do
        if deadline and clock() >= deadline then return false end
        pump(self.pool, deadline)
      end
      return true
    end

    --- r:ready(): done (without waiting).
    function Result:ready(...)
      check_no_more("result:ready", 0, ...)
      if not self.done and self.pool.state ~= "terminated" then drain_results(self.pool) end
      return self.done
    end

    --- r:successful(): done without an error; an error before it is done, as Python's.
    function Result:successful(...)
      check_no_more("result:successful", 0, ...)
      if not self:ready() then error("result:successful: the task is not done yet", 2) end
      return self.ok
    end

    return new
    """#

    /// Pushes `ipc.pool`, given the module table at `module`.
    static func push(_ s: LuaState, module: Int32) throws(LuaRaise) {
        s.pushValue(module)
        if try !LuaChunks.push(source, name: "=ipc.pool", s, arguments: 1) { s.pushNil() }
    }
}
