// The C side of the Lua bindings.
//
// Lua raises errors with longjmp, and a longjmp across Swift frames is undefined
// behaviour. So every Lua-visible function is the small C trampoline below: it calls a
// Swift function, which returns either a result count or IPC_LUA_RAISE with the error
// message handed over (ipc_lua_setraise); the trampoline then pushes the message and
// calls lua_error from C, after the Swift frame has returned.
//
// Any API call that allocates can raise too (a memory error), and can run a collector
// step, hence finalizers (which may call back into ipc). Swift makes such calls only
// through the protected helpers below (ipc_lua_p_*), which run them under lua_pcall and
// return a status; the decoder of messages is C and runs protected as a whole. Swift
// calls the rest of the API directly: the calls that cannot raise (lua_type, lua_to*,
// lua_push* of numbers and booleans, lua_rawget*, lua_checkstack, ...).
//
// Lua's headers define much of the API as function-like macros, which Swift cannot
// import; they are re-exported here as static inline functions.
#ifndef IPCPLAY_IPC_LUA_H
#define IPCPLAY_IPC_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/// Returned by a Swift binding to ask its trampoline to raise the message handed over by
/// ipc_lua_setraise.
#define IPC_LUA_RAISE (-1)

/// Hands the trampoline the message of the error it is to raise (copied).
void ipc_lua_setraise(const char *message, size_t len);

/// A Lua-visible function written in Swift: returns a result count or IPC_LUA_RAISE.
typedef int (*ipc_swift_function)(lua_State *L);

// MARK: - Function-like macros of lua.h and lauxlib.h

static inline int ipc_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int ipc_lua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline void ipc_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void ipc_lua_newtable(lua_State *L) { lua_newtable(L); }
static inline void ipc_lua_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void ipc_lua_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void ipc_lua_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int ipc_lua_isnoneornil(lua_State *L, int idx) { return lua_isnoneornil(L, idx); }
static inline const char *ipc_lua_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline int ipc_lua_getuservalue(lua_State *L, int idx) { return lua_getiuservalue(L, idx, 1); }
static inline int ipc_lua_setuservalue(lua_State *L, int idx) { return lua_setiuservalue(L, idx, 1); }
static inline void ipc_lua_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline const char *ipc_lua_typename_at(lua_State *L, int idx) { return luaL_typename(L, idx); }
static inline lua_Integer ipc_lua_maxinteger(void) { return LUA_MAXINTEGER; }
static inline lua_Integer ipc_lua_mininteger(void) { return LUA_MININTEGER; }

// MARK: - Protected calls
//
// Each runs API calls that allocate in protected mode and returns LUA_OK, or the error
// status with nothing pushed and the error's message in ipc_lua_lasterror(). Values the
// call consumes (a value to store) are popped either way. Each needs a few free stack
// slots, which it checks.

/// The message of the last failed protected call ("not enough memory", or the error a
/// hook raised in it).
const char *ipc_lua_lasterror(void);
/// lua_pcall of the C function below `nargs` arguments on the stack top, with no message
/// handler: on failure, the error is popped and kept for ipc_lua_lasterror.
int ipc_lua_protect(lua_State *L, int nargs, int nresults);

/// lua_pushlstring.
int ipc_lua_p_pushlstring(lua_State *L, const char *s, size_t len);

/// Strings up to this long are pushed without a protected call (ipc_lua_pushsmall).
#define IPC_LUA_SMALL_STRING 1024

/// Before a string or a message of `len` bytes is made: when it is large (16 MiB or more)
/// and no block the allocator kept fits it, a full collection (protected) first frees the
/// large strings that are garbage by now into the kept blocks, if the rest of the heap is
/// small beside it. Nothing otherwise.
void ipc_lua_collectfor(lua_State *L, size_t len);
/// lua_pushlstring that cannot raise: a string of at most IPC_LUA_SMALL_STRING bytes is
/// one small block, which the allocator (ipc_memory.c) never refuses; longer ones go
/// through ipc_lua_p_pushlstring. Returns a status as the protected helpers do. Needs
/// one free stack slot, as lua_pushlstring does.
int ipc_lua_pushsmall(lua_State *L, const char *s, size_t len);
/// lua_createtable.
int ipc_lua_p_createtable(lua_State *L, int narr, int nrec);
/// t[key] = v (raw), v on the stack top (popped).
int ipc_lua_p_setfield(lua_State *L, int t, const char *key, size_t keylen);
/// Pushes t[key] (raw); its type in *type.
int ipc_lua_p_getfield(lua_State *L, int t, const char *key, size_t keylen, int *type);
/// t[n] = v (raw), v on the stack top (popped).
int ipc_lua_p_rawseti(lua_State *L, int t, lua_Integer n);
/// Pushes a new full userdata of `size` bytes with one user value; its block in *block.
int ipc_lua_p_newuserdata(lua_State *L, size_t size, void **block);
/// Pushes the metatable registered under `tname` (luaL_getmetatable, without metamethods).
int ipc_lua_p_getmetatable(lua_State *L, const char *tname);
/// luaL_newmetatable: pushes the metatable registered under `tname`, made if missing.
int ipc_lua_p_newmetatable(lua_State *L, const char *tname);
/// Pushes a new coroutine; it in *thread.
int ipc_lua_p_newthread(lua_State *L, lua_State **thread);

// MARK: - Swift functions as Lua functions

/// Pushes a Lua C closure that runs `fn` through the raising trampoline. `nup` values on
/// top of the stack become upvalues 2..nup+1 (upvalue 1 holds `fn`). Protected: returns
/// a status; the upvalues are popped either way.
int ipc_lua_pushswift(lua_State *L, ipc_swift_function fn, int nup);

/// Pushes a function `f(self, fn, ...)` that calls `acquire(self)`, then `fn(...)`, and
/// always calls `release(self)` afterwards, also when `fn` raises (a to-be-closed slot,
/// so the error keeps its own traceback). `acquire` and `release` are on the stack top
/// (acquire below release) and are popped. Protected: returns a status.
int ipc_lua_pushguardedcall(lua_State *L, const char *name);

/// Pushes an `__index` function for a type with fields: it returns the method named by
/// the key from the method table (without leaving C), or else calls the field function
/// `f(object, key)`. The method table and `f` are on the stack top (table below f) and
/// are popped. Protected: returns a status.
int ipc_lua_pushindex(lua_State *L);

/// The trampoline itself: runs the Swift function at upvalue 1 and raises its error.
int ipc_lua_trampoline(lua_State *L);

// MARK: - C fast paths (ipc_fast.c)

/// Pushes a method with a path in C for its simple case, `fn` (its Swift binding) for the
/// others: `lock`/`unlock` (`acquire`/`release`) uncontended, a queue's `put`/`get` of a
/// small item, a connection's `send`/`recv` of a message of one small frame, a
/// semaphore's `acquire` of a unit that is there and `release` of one, a value's `add` of
/// an integer that fits. On the stack top (popped): the entry, the kind, the metatable (light
/// userdata). `operation`: 1 acquire, 2 release, 3 put, 4 get, 5 send, 6 recv,
/// 7 send_bytes, 8 recv_bytes, 9 and 10 a semaphore's acquire and release, 11 a value's
/// add, 12 put_nowait, 13 get_nowait; the offsets of the lock (a queue's state lock) and of the
/// object's name in its shared memory; whether the lock is recursive; `call` names it in
/// a warning or an error.
int ipc_lua_pushfast(lua_State *L, ipc_swift_function fn, int operation, long lock_offset, long name_offset,
                     int recursive, const char *call);
/// The block of an ipc object's userdata at `i` says its shared memory is no more for the
/// fast paths (a closed queue or connection: its calls go to Swift, which says "closed").
void ipc_lua_box_detach(lua_State *L, int i);
/// The size of an ipc object's userdata block, and its fields for the fast paths (the
/// object itself is stored last, once nothing can fail): its shared memory, its kind's
/// metatable, a connection's read and write ends and their directions, or a queue's
/// eventfd as `fd_out`; -1 for none.
size_t ipc_lua_box_size(void);
void ipc_lua_box_init(void *block, void *shared, const void *tag, int fd_in, int fd_out, int dir_in, int dir_out);
/// The metatable of each object kind in this process's Lua state (by ObjectKind's raw
/// value), for recognising a userdata by a pointer comparison.
/// `__index` of a type with fields: the method table (upvalue 1), else the field
/// function (upvalue 2) called with the object and the key.
int ipc_lua_index_with_fields(lua_State *L);
extern const void *ipc_metatables[64];
static inline const void **ipc_metatables_of_kinds(void) { return ipc_metatables; }
/// Pushes a `__newindex` that writes `v.value` in C, else calls `fn`: on the stack top,
/// the key "value" and the metatable (light userdata).
int ipc_lua_pushfastnewindex(lua_State *L, ipc_swift_function fn);
/// Gives the userdata below the stack top its own metatable, made from its kind's
/// metatable (on the top, popped): the same fields, but an `__index` table of its own
/// that holds the methods, so that `v:lock()` finds its method with no call into C, and
/// whose own `__index` (the kind's) serves the fields with the object at hand.
int ipc_lua_p_setownmetatable(lua_State *L);
/// The tag of the ipc object at `i` (its kind's metatable, written into its box when it
/// was made), or NULL when the value is not one. The box, not the metatable, says what an
/// object is: a script can give any userdata any metatable (`debug.setmetatable`), but
/// not write into a userdata's block. Allocates nothing.
const void *ipc_lua_objecttag(lua_State *L, int i);

// MARK: - Decoding messages (ipc_decode.c)

#define IPC_DECODE_OK 0
/// The bytes are not a message: why is in `error`.
#define IPC_DECODE_MALFORMED 1
/// Lua ran out of memory while building the value.
#define IPC_DECODE_MEMORY 2
/// Something that ran in the decode raised (a hook): its message is in `error`.
#define IPC_DECODE_FAILED 3

/// Pushes the value encoded in `bytes` (see WireFormat.swift), in protected mode (a
/// scalar, which needs no memory, directly). Returns an IPC_DECODE_* status; on failure
/// nothing is pushed.
int ipc_lua_decode(lua_State *L, const void *bytes, size_t len, char *error, size_t errorcap);

/// The decoder's fast path: pushes a message that is one scalar or one small string (no
/// protected call needed) and returns 1; returns 0, having pushed nothing, otherwise.
/// Needs one free stack slot (a C function always has LUA_MINSTACK).
int ipc_lua_decodesimple(lua_State *L, const void *bytes, size_t len);
/// The encoder's fast path, for the C fast paths: encodes the value at `i` into `out` as
/// LuaCodec.swift would when it is nil, a boolean, a number or a string, and returns its
/// length; returns 0 for any other value, or when it does not fit in `cap` bytes. Never
/// raises, never allocates.
size_t ipc_lua_encodesimple(lua_State *L, int i, unsigned char *out, size_t cap);

// MARK: - The state and its memory (ipc_memory.c)

/// A new Lua state whose allocator keeps the heap within the limits below (none until
/// they are set), with luaL_newstate's warning function and a panic function that ends
/// the process with status 1 and a message. NULL if there is no memory for it.
lua_State *ipc_lua_newstate(void);

/// The heap may not grow past `bytes` (0: no limit).
void ipc_lua_setmemorylimit(size_t bytes);

/// The heap may grow while the address space (`space`, RLIMIT_AS) and the private data
/// (`data`, RLIMIT_DATA) of the process leave `reserve` bytes of each to the rest of it
/// (0: no such limit).
void ipc_lua_setaddresslimits(size_t space, size_t data, size_t reserve);

/// The bytes the Lua heap holds.
size_t ipc_lua_memoryused(void);

/// The allocator keeps the last few large blocks Lua freed (at least IPC_LUA_KEEP_MIN
/// bytes each) for the next large allocations; they count against the limits, and are
/// given back before anything is refused.
#define IPC_LUA_KEEP_MIN ((size_t)1 << 20)

/// The bytes of the blocks kept (0: none).
size_t ipc_lua_memorykept(void);

/// Frees the blocks kept, if any.
void ipc_lua_dropkept(void);

/// Called before the allocator refuses memory, to free what the host holds and can
/// spare (idle message buffers); the allocator then looks at its limits again.
void ipc_lua_setreleasehook(void (*release)(void));

/// Makes the standard library functions that build strings in lauxlib buffers (which
/// the allocator's refusals do not get an emergency collection) run a full collection
/// first when the heap has come near its limit. Part of ipc_lua_openlibs.
void ipc_lua_guardbuffers(lua_State *L);

/// The address space and the private data (VmData) of this process, in bytes; 0 when
/// /proc cannot be read.
int ipc_lua_addressspace(size_t *size, size_t *data);

// MARK: - Running Lua code

/// lua.c's message handler: turns the error into a string and appends a traceback. A
/// message raised by a binding (which carries no position) gets the position of the Lua
/// code that made the call.
int ipc_lua_msghandler(lua_State *L);

/// lua.c's docall: calls the function below `narg` arguments in protected mode with the
/// message handler. Never raises; returns the lua_pcall status.
int ipc_lua_docall(lua_State *L, int narg, int nres);

/// lua_pcall without a message handler (the macro form of lua_pcallk).
static inline int ipc_lua_pcall(lua_State *L, int narg, int nres, int msgh) {
    return lua_pcall(L, narg, nres, msgh);
}

/// Loads a file as a chunk (luaL_loadfilex never raises; the error is pushed).
static inline int ipc_lua_loadfile(lua_State *L, const char *path) {
    return luaL_loadfilex(L, path, NULL);
}

/// Loads a string as a chunk named `name`.
static inline int ipc_lua_loadbuffer(lua_State *L, const char *s, size_t len, const char *name) {
    return luaL_loadbufferx(L, s, len, name, NULL);
}

/// A full garbage collection (lua_gc is variadic). Finalizers run protected: never raises
/// (but for memory errors).
static inline void ipc_lua_fullgc(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }

/// The bytes the state has allocated (LUA_GCCOUNT and LUA_GCCOUNTB). Never raises.
static inline size_t ipc_lua_memory_bytes(lua_State *L) {
    return (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
}

/// `math.randomseed(seed)` (the standard library's, whatever the script did to the global
/// `math`), in protected mode; returns a lua_pcall status.
int ipc_lua_randomseed(lua_State *L, lua_Integer seed);

/// Opens the standard libraries in protected mode; returns a lua_pcall status.
int ipc_lua_openlibs(lua_State *L);

/// The first Lua frame's source and line, walking up from `level`; returns 0 if none.
/// Also the line that called the function holding that frame (the next Lua frame
/// out), unless that function is a chunk or was called from C (a process's target):
/// `*caller_line` is 0 then. A call made in a helper is shown with the line that used it.
int ipc_lua_calllocation(lua_State *L, int level, char *src, size_t cap, int *line,
                         char *caller_src, size_t caller_cap, int *caller_line);

#endif
