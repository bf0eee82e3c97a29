---@meta ipc
-- LuaLS (lua-language-server) definitions of ipcplay's `ipc` module: every name of the
-- Lua API contract (v2) and of docs/api.md, for completion, hover and type checks in an
-- editor. Declarations only: nothing here runs. `.luarc.json` at the repository's root
-- points LuaLS here; tests/stubs_test.lua checks that every name the module registers
-- is declared below (a module function as `function ipc.NAME(`, a method of class
-- `ipc.Queue` as `function Queue:NAME(`, a field as `---@field NAME`).
--
-- Conventions (docs/api.md):
-- - A call that can time out returns its normal result, or `nil, "timeout"`; a call on
--   something closed returns `nil, "closed"`. `nil` is a legal message: test the second
--   result (`local v, err = q:get(1); if err then ... end`).
-- - Misuse raises an error whose message starts with the call's name
--   (`queue:put: cannot send a function (at value.handler)`).
-- - Every constructor takes an optional options table as its last argument
--   (`{name = "jobs"}`); unnamed objects are numbered per kind (`queue#1`).
-- - Queues, Connections, Sockets, Servers and Dgrams can be Lua 5.4 to-be-closed
--   variables (contract v2): `local q <close> = ipc.queue()` closes the queue at the end
--   of the block, as `q:close()` would (a server also removes its socket file).

-- MARK: - Shared aliases

---A number of seconds (fractions allowed). `nil` (or nothing) waits for ever; `0` or a
---negative number does not block; `false` does not block and `true` blocks; NaN is an
---error.
---@alias ipc.Timeout number|boolean

---A Lua value that can travel through a queue or a pipe: nil, booleans, integers,
---floats, strings and tables of these (copied). Functions, coroutines, userdata, IPC
---objects and tables that contain themselves are errors.
---@alias ipc.Sendable nil|boolean|number|string|table

---Typecodes as in Python's `array`/`ctypes`: `b B h H i I l L q Q` integers, `f d`
---floats, `c` one byte (a one-character string), `?` boolean.
---@alias ipc.Typecode "b"|"B"|"h"|"H"|"i"|"I"|"l"|"L"|"q"|"Q"|"f"|"d"|"c"|"?"

---What `ipc.wait` can wait on: ready to read (or to accept), or ended (a Process).
---@alias ipc.Waitable ipc.Connection|ipc.Queue|ipc.JoinableQueue|ipc.Socket|ipc.Server|ipc.Dgram|ipc.Process

---What `sock:send_handle` can pass to another process.
---@alias ipc.Handle ipc.Connection|ipc.Socket|ipc.Server|ipc.Dgram

---The options table every constructor takes last.
---@class ipc.Options
---@field name? string names the object in error messages, reports and traces

---@class ipc.QueueOptions: ipc.Options
---@field ring? integer size in bytes of the queue's shared-memory ring (4096..2^40; default 256 MiB, paid as used)

---@class ipc.SocketOptions: ipc.Options
---@field mode? integer file mode of the socket file (e.g. `tonumber("600", 8)`); default: the umask's

-- MARK: - The module

---The `ipc` module: `local ipc = require("ipc")`; also preset as the global `ipc`.
---@class ipc
ipc = {}

---"ipcplay " followed by the version, e.g. "ipcplay 0.1.0".
---@type string
ipc._VERSION = ""

-- MARK: - Processes

---Arguments of `ipc.process{...}`.
---@class ipc.ProcessSpec
---@field target fun(...) the function the process runs
---@field args? table its arguments; may hold nils if it has a field `n` (as `table.pack` makes)
---@field name? string default `Process-N`, counted per parent (`Process-N:1` for a child's child)
---@field daemon? boolean a daemon process is ended when the main script ends; others are waited for

---What `ipc.current()` returns.
---@class ipc.ParentInfo
---@field name string
---@field pid integer

---@class ipc.ProcessInfo
---@field name string `MainProcess` for the main script, `Process-1`, ... for children
---@field pid integer
---@field is_main boolean true in the main script's process (addition)

---Forks a child that runs `fn(...)`; returns the started Process. The arguments are not
---copied or encoded (the child is a fork): any Lua value can be passed.
---@param fn fun(...) the child's body
---@param ... any its arguments
---@return ipc.Process
function ipc.spawn(fn, ...) end

---A Process not yet started (`p:start()` forks it).
---@param spec ipc.ProcessSpec `{target = fn, args = {...}, name = "p1", daemon = false}`
---@return ipc.Process
function ipc.process(spec) end

---The calling process: `{name = ..., pid = ..., is_main = ...}`.
---@return ipc.ProcessInfo
function ipc.current() end

---The process that started this one (`{name = ..., pid = ...}`), or nil in the main process.
---@return ipc.ParentInfo|nil
function ipc.parent_process() end

---The Processes this process started that have not ended (it reaps those that have).
---@return ipc.Process[]
function ipc.active_children() end

---A pool of `n` worker processes (default: ipc.cpu_count()), as Python's multiprocessing.Pool.
---@param n? integer
---@return ipc.Pool
function ipc.pool(n) end

---@class ipc.Pool
local Pool = {}

---{fn(list[1]), ...} (each call's first result), in order.
---@param fn function
---@param list any[]
---@return any[]
function Pool:map(fn, list) end

---{fn(table.unpack(list[1])), ...}, in order.
---@param fn function
---@param list any[][]
---@return any[]
function Pool:starmap(fn, list) end

---An iterator over the results, in order.
---@param fn function
---@param list any[]
---@return fun(): any
function Pool:imap(fn, list) end

---An iterator over the results, as they come.
---@param fn function
---@param list any[]
---@return fun(): any
function Pool:imap_unordered(fn, list) end

---Runs fn(table.unpack(args)) in a worker; returns a result to get.
---@param fn function
---@param args? any[]
---@return ipc.PoolResult
function Pool:apply_async(fn, args) end

---apply_async(fn, args):get()
---@param fn function
---@param args? any[]
---@return any ...
function Pool:apply(fn, args) end

---No more tasks.
function Pool:close() end

---Ends the workers now; unfinished tasks fail.
function Pool:terminate() end

---After close() or terminate(): waits for the tasks and the workers to end.
---@param timeout? number
---@return boolean ended
function Pool:join(timeout) end

---@class ipc.PoolResult
local PoolResult = {}

---The task's results; raises its error; `nil, "timeout"`.
---@param timeout? number
---@return any ...
function PoolResult:get(timeout) end

---True once the task is done (false at the timeout).
---@param timeout? number
---@return boolean
function PoolResult:wait(timeout) end

---Done, without waiting.
---@return boolean
function PoolResult:ready() end

---Done without an error (an error if not done yet).
---@return boolean
function PoolResult:successful() end

---The number of CPUs online, as Python's os.cpu_count().
---@return integer
function ipc.cpu_count() end

---Sleeps; the duration is multiplied by `--time-scale` (virtual time under `--sched`).
---@param seconds number not negative
function ipc.sleep(seconds) end

---Monotonic seconds as a float, for measuring intervals.
---@return number
function ipc.now() end

---A process: made by `ipc.spawn` (started) or `ipc.process` (not yet started).
---@class ipc.Process
---@field pid integer|nil the process id; nil until started
---@field name string `Process-1`, ...; may be assigned
---@field daemon boolean may be assigned before `start`
---@field exitcode integer|nil nil while running; 0 normal end; 1 uncaught error; n after os.exit(n); -N signal N
local Process = {}

---Forks the process. Starting it twice is an error.
function Process:start() end

---Waits for the process to end (only the process that started it can join it).
---@param timeout? ipc.Timeout
---@return boolean ended `true`, or `false` when the timeout passed first
function Process:join(timeout) end

---True between `start` and the end of the process.
---@return boolean
function Process:is_alive() end

---Sends SIGTERM (exitcode -15).
function Process:terminate() end

---Sends SIGKILL (exitcode -9).
function Process:kill() end

-- MARK: - Pipes

---Two Connections `a, b`. Duplex by default; with `false`, `a` only receives and `b`
---only sends.
---@param duplex? boolean default true
---@param options? ipc.Options
---@return ipc.Connection a
---@return ipc.Connection b
function ipc.pipe(duplex, options) end

---One end of a pipe. Supports `<close>` (contract v2): `local c <close> = a`.
---@class ipc.Connection
local Connection = {}

---Sends one value.
---@param value ipc.Sendable
---@return true|nil ok
---@return "closed"|nil err `"closed"` when every receiving end is closed
function Connection:send(value) end

---The next value; `nil, "closed"` at the end of the stream, `nil, "timeout"`.
---@param timeout? ipc.Timeout
---@return any|nil value
---@return "timeout"|"closed"|nil err
function Connection:recv(timeout) end

---True when a message (or the end of the stream) is ready to read. Without a timeout
---it does not wait.
---@param timeout? ipc.Timeout
---@return boolean|nil ready
---@return "closed"|nil err
function Connection:poll(timeout) end

---Sends a raw string message, no encoding: `size` bytes of `s` from byte `offset`
---(counted from 0, as Python's; default: all of `s`).
---@param s string
---@param offset? integer
---@param size? integer
---@return true|nil ok
---@return "closed"|nil err
function Connection:send_bytes(s, offset, size) end

---The next message as raw bytes.
---@param timeout? ipc.Timeout
---@return string|nil bytes
---@return "timeout"|"closed"|nil err
function Connection:recv_bytes(timeout) end

---Closes this end in this process.
function Connection:close() end

---Whether this end is closed in this process (addition).
---@return boolean
function Connection:closed() end

---Whether this end can receive (addition).
---@return boolean
function Connection:readable() end

---Whether this end can send (addition).
---@return boolean
function Connection:writable() end

-- MARK: - Queues

---A FIFO shared by all processes.
---@param maxsize? integer 0 or absent: no item limit
---@param options? ipc.QueueOptions
---@return ipc.Queue
function ipc.queue(maxsize, options) end

---A queue whose items are marked done (`task_done`) and waited for (`join`).
---@param maxsize? integer 0 or absent: no item limit
---@param options? ipc.QueueOptions
---@return ipc.JoinableQueue
function ipc.joinable_queue(maxsize, options) end

---A FIFO in shared memory. Supports `<close>` (contract v2): `local q <close> = ipc.queue()`.
---@class ipc.Queue
local Queue = {}

---Puts an item, blocking while the queue is full. `nil` is a legal item.
---@param v ipc.Sendable
---@param timeout? ipc.Timeout
---@return true|nil ok
---@return "timeout"|"closed"|nil err
function Queue:put(v, timeout) end

---Takes the next item, blocking while the queue is empty.
---@param timeout? ipc.Timeout
---@return any|nil item
---@return "timeout"|"closed"|nil err
function Queue:get(timeout) end

---Puts without blocking.
---@param v ipc.Sendable
---@return true|nil ok
---@return "full"|"closed"|nil err
function Queue:put_nowait(v) end

---Takes without blocking.
---@return any|nil item
---@return "empty"|"closed"|nil err
function Queue:get_nowait() end

---The number of items (a snapshot).
---@return integer
function Queue:qsize() end

---Whether the queue is empty (a snapshot).
---@return boolean
function Queue:empty() end

---Whether the queue is full (a snapshot).
---@return boolean
function Queue:full() end

---No more puts (and gets) from this process: they return `nil, "closed"`.
function Queue:close() end

---A queue with `task_done` and `join`. Supports `<close>` (contract v2).
---@class ipc.JoinableQueue: ipc.Queue
local JoinableQueue = {}

---Marks one item done; an error when called more often than items were put.
function JoinableQueue:task_done() end

---Blocks until every item put has been marked done.
---@param timeout? ipc.Timeout
---@return boolean done `true`, or `false` on timeout
function JoinableQueue:join(timeout) end

-- MARK: - Shared values

---One shared scalar; `v.value` reads, `v.value = x` writes.
---@param typecode ipc.Typecode
---@param init? number|boolean|string zero when absent
---@param options? ipc.Options
---@return ipc.Value
function ipc.value(typecode, init, options) end

---A shared array: `a[i]` (1-based), `#a`, `ipairs(a)`, `a:totable()`.
---@param typecode ipc.Typecode
---@param init table|integer|string a table of values, a length (zero-filled), or for `c` a string
---@param options? ipc.Options
---@return ipc.Array
function ipc.array(typecode, init, options) end

---A shared scalar with its own (re-entrant) lock.
---@class ipc.Value
---@field value number|boolean|string the value: reads and writes are atomic
---@field typecode ipc.Typecode
---@field name string
local Value = {}

---Takes the value's lock (re-entrant).
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function Value:lock(timeout) end

---Releases the value's lock; an error when this process does not hold it.
function Value:unlock() end

---Calls `fn(...)` holding the value's lock and returns its results; unlocks even when
---`fn` raises.
---@param fn fun(...): ...
---@param ... any
---@return ...
function Value:with_lock(fn, ...) end

---Adds `n` atomically.
---@param n number
---@return number new the new value
function Value:add(n) end

---Atomically stores `new` if the value is `old`.
---@param old number|boolean|string
---@param new number|boolean|string
---@return boolean swapped
function Value:compare_swap(old, new) end

---A shared array of fixed length with its own (re-entrant) lock. A read outside `1..#a`
---gives nil; a write there is an error.
---@class ipc.Array
---@field [integer] number|boolean|string element `i` (1-based)
---@field typecode ipc.Typecode
---@field name string
---@operator len: integer
local Array = {}

---Takes the array's lock (re-entrant).
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function Array:lock(timeout) end

---Releases the array's lock; an error when this process does not hold it.
function Array:unlock() end

---Calls `fn(...)` holding the array's lock and returns its results; unlocks even when
---`fn` raises.
---@param fn fun(...): ...
---@param ... any
---@return ...
function Array:with_lock(fn, ...) end

---Copies the elements into a new table.
---@return (number|boolean|string)[]
function Array:totable() end

---Adds `n` (default 1) to element `i` atomically (addition).
---@param i integer
---@param n? number
---@return number new the new value
function Array:add(i, n) end

-- MARK: - Synchronisation

---A counter in shared memory.
---@param n? integer initial value, default 1
---@param options? ipc.Options
---@return ipc.Semaphore
function ipc.semaphore(n, options) end

---A semaphore whose value may not exceed its initial `n`.
---@param n? integer initial value and bound, default 1
---@param options? ipc.Options
---@return ipc.BoundedSemaphore
function ipc.bounded_semaphore(n, options) end

---A lock owned by the process that acquired it (taken over if that process dies).
---@param options? ipc.Options
---@return ipc.Lock
function ipc.lock(options) end

---A re-entrant lock: the holder may acquire it again and needs as many releases.
---@param options? ipc.Options
---@return ipc.RLock
function ipc.rlock(options) end

---A readers-writer lock (addition: Python has none): readers share it, a writer excludes.
---@param options? ipc.Options
---@return ipc.RWLock
function ipc.rwlock(options) end

---A flag processes wait for.
---@param options? ipc.Options
---@return ipc.Event
function ipc.event(options) end

---A condition variable over `lock` (a new rlock by default).
---@param lock? ipc.Lock|ipc.RLock|ipc.Options
---@param options? ipc.Options
---@return ipc.Condition
function ipc.condition(lock, options) end

---A barrier for `n` processes.
---@param n integer parties, at least 1
---@param options? ipc.Options
---@return ipc.Barrier
function ipc.barrier(n, options) end

---A counter in shared memory, without an owner.
---@class ipc.Semaphore
local Semaphore = {}

---Takes one unit, waiting while there is none.
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function Semaphore:acquire(timeout) end

---Adds `n` units (default 1). Above a bounded semaphore's bound: an error.
---@param n? integer
function Semaphore:release(n) end

---The counter.
---@return integer
function Semaphore:get_value() end

---Runs `fn(...)` between an acquire and a release; returns its results.
---@param fn fun(...): ...
---@param ... any
---@return ...
function Semaphore:with(fn, ...) end

---A semaphore that cannot be released above its initial value: its methods are Semaphore's.
---@class ipc.BoundedSemaphore: ipc.Semaphore

---A lock owned by the process that acquired it.
---@class ipc.Lock
local Lock = {}

---Acquires the lock. A plain lock acquired again without a timeout by its holder is an
---error (it would wait for ever).
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function Lock:acquire(timeout) end

---Releases the lock; an error when this process does not hold it.
function Lock:release() end

---Whether some process holds the lock (addition).
---@return boolean
function Lock:locked() end

---Runs `fn(...)` holding the lock; returns its results; releases even when `fn` raises.
---@param fn fun(...): ...
---@param ... any
---@return ...
function Lock:with(fn, ...) end

---A re-entrant lock: its methods are Lock's.
---@class ipc.RLock: ipc.Lock

---A readers-writer lock (addition): any number of processes read at once; a writer
---waits for them and excludes everybody. A process that dies holding it leaves it free.
---@class ipc.RWLock
local RWLock = {}

---Takes it to read (again, if this process reads already), waiting while a process
---writes or waits to write. An error when this process writes.
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function RWLock:acquire_read(timeout) end

---Gives back one read; an error when this process does not read.
function RWLock:release_read() end

---Takes it to write, waiting for the writer before and for every reader. An error when
---this process reads or writes already (it would wait for itself).
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function RWLock:acquire_write(timeout) end

---Gives back the write; an error when this process does not write.
function RWLock:release_write() end

---How many processes read now.
---@return integer
function RWLock:readers() end

---Runs `fn(...)` reading; returns its results; gives the read back even when `fn` raises.
---@param fn fun(...): ...
---@param ... any
---@return ...
function RWLock:with_read(fn, ...) end

---Runs `fn(...)` writing; returns its results; gives the write back even when `fn` raises.
---@param fn fun(...): ...
---@param ... any
---@return ...
function RWLock:with_write(fn, ...) end

---A flag in shared memory.
---@class ipc.Event
local Event = {}

---Sets the flag, waking every waiter.
function Event:set() end

---Clears the flag.
function Event:clear() end

---@return boolean
function Event:is_set() end

---Waits for the flag.
---@param timeout? ipc.Timeout
---@return boolean set `true` once set, `false` on timeout
function Event:wait(timeout) end

---A condition variable over a lock or rlock.
---@class ipc.Condition
local Condition = {}

---Acquires the condition's lock.
---@param timeout? ipc.Timeout
---@return boolean acquired `false` on timeout
function Condition:acquire(timeout) end

---Releases the condition's lock.
function Condition:release() end

---With the lock held: releases it, waits for a notify, takes it back.
---@param timeout? ipc.Timeout
---@return boolean notified `false` on timeout
function Condition:wait(timeout) end

---With the lock held: wakes `n` waiters (default 1), the longest waiting first.
---@param n? integer
function Condition:notify(n) end

---With the lock held: wakes every waiter.
function Condition:notify_all() end

---With the lock held: waits until `predicate()` is true (addition, as Python's).
---@param predicate fun(): any
---@param timeout? number
---@return any result the predicate's last result
function Condition:wait_for(predicate, timeout) end

---Runs `fn(...)` holding the condition's lock; returns its results.
---@param fn fun(...): ...
---@param ... any
---@return ...
function Condition:with(fn, ...) end

---A barrier: `b:wait()` returns once `parties` processes wait.
---@class ipc.Barrier
---@field parties integer the number of processes it waits for
---@field n_waiting integer how many wait now
---@field broken boolean true after a timeout or `abort`, until `reset`
---@field name string
local Barrier = {}

---Blocks until `parties` processes have called it.
---@param timeout? ipc.Timeout
---@return integer|nil index this caller's arrival index, 0..parties-1
---@return "timeout"|"broken"|nil err
function Barrier:wait(timeout) end

---Returns the barrier to its initial state (waiters get `nil, "broken"`).
function Barrier:reset() end

---Breaks the barrier on purpose.
function Barrier:abort() end

-- MARK: - Waiting on several things

---The sub-list of `list` that is ready to read (or accept), or has ended (a Process), in `list`'s order; an empty
---table when the timeout passes.
---@param list ipc.Waitable[]
---@param timeout? ipc.Timeout
---@return ipc.Waitable[]
function ipc.wait(list, timeout) end

-- MARK: - Unix domain sockets

---Unix domain sockets: plain bytes, so any program (socat, Python, nc -U) can be the peer.
ipc.unix = {}

---A stream server bound to `path` (a stale socket file there is replaced).
---@param path string
---@param backlog? integer default 5
---@param options? ipc.SocketOptions
---@return ipc.Server
function ipc.unix.listen(path, backlog, options) end

---Connects to a server.
---@param path string
---@param timeout? ipc.Timeout
---@return ipc.Socket|nil sock
---@return string|nil err `no such socket: PATH`, `nothing listens at PATH`, ...
function ipc.unix.connect(path, timeout) end

---Two connected Sockets.
---@return ipc.Socket a
---@return ipc.Socket b
function ipc.unix.socketpair() end

---A datagram socket bound to `path` (without a path it can only send).
---@param path? string
---@param options? ipc.SocketOptions
---@return ipc.Dgram
function ipc.unix.dgram(path, options) end

---A listening stream socket. Supports `<close>` (contract v2), which also removes its
---socket file.
---@class ipc.Server
local Server = {}

---The next connection.
---@param timeout? ipc.Timeout
---@return ipc.Socket|nil sock
---@return "timeout"|"closed"|nil err
function Server:accept(timeout) end

---Closes the server; removes the socket file it made.
function Server:close() end

---The path it is bound to (addition).
---@return string|nil
function Server:path() end

---A connected stream socket. Supports `<close>` (contract v2).
---@class ipc.Socket
local Socket = {}

---Sends all of `s`.
---@param s string
---@return integer|nil sent its length
---@return "closed"|nil err
function Socket:send(s) end

---Up to `n` bytes, as soon as some are there.
---@param n integer
---@param timeout? ipc.Timeout
---@return string|nil bytes
---@return "timeout"|"closed"|nil err
function Socket:recv(n, timeout) end

---Closes the socket in this process.
function Socket:close() end

---Passes a Connection, Socket, Server or Dgram to the process at the other end
---(SCM_RIGHTS; addition). The sender keeps its copy.
---@param h ipc.Handle
---@return true|nil ok
---@return "closed"|nil err
function Socket:send_handle(h) end

---The object sent by `send_handle` (addition).
---@param timeout? ipc.Timeout
---@return ipc.Handle|nil h
---@return "timeout"|"closed"|nil err
function Socket:recv_handle(timeout) end

---A datagram socket. Supports `<close>` (contract v2).
---@class ipc.Dgram
local Dgram = {}

---Sends one datagram to the socket bound at `path`.
---@param path string
---@param s string
---@return integer|nil sent its length
---@return string|nil err why it was not sent
function Dgram:sendto(path, s) end

---The next datagram and the sender's path (`""` for an unbound sender).
---@param timeout? ipc.Timeout
---@return string|nil data
---@return string|"timeout"|"closed" from_or_err the sender's path, or the error
function Dgram:recvfrom(timeout) end

---Closes the socket; removes the socket file it made.
function Dgram:close() end

---The path it is bound to (addition).
---@return string|nil
function Dgram:path() end

-- MARK: - Scenario tests

---Helpers for scenario tests (`ipcplay test`, docs/testing.md).
ipc.test = {}

---Deep equality (tables by content, NaN equal to NaN, integer and float kept apart);
---fails with the caller's `file:line`.
---@generic T
---@param actual T
---@param expected any
---@param message? string
---@return T actual
function ipc.test.eq(actual, expected, message) end

---`fn()` must raise, with a message matching the Lua pattern if given.
---@param fn fun()
---@param pattern? string
---@return any err the error
function ipc.test.raises(fn, pattern) end

---Ends the test as skipped (call it from the main script).
---@param reason? string
function ipc.test.skip(reason) end

---The test runner's seed (`--seed`, or the one it chose) for this run.
---@return integer
function ipc.test.seed() end

return ipc
