// The Lua state's allocator: it keeps the Lua heap within a limit, so that a script that
// uses up the memory it may have gets Lua's "not enough memory" while the host (the
// runtime's own buffers, error reports, the next call) still has room to work.
//
// Two limits, either optional: a plain one on the heap (--memory-limit), and one that
// follows the address space (RLIMIT_AS, and RLIMIT_DATA for private memory): the heap may
// grow until only `reserve` bytes of it would be left to the host. The address space is
// shared with everything else the process maps (queue rings reserve theirs when made),
// so the allocator looks at it again (/proc/self/statm) after every few MiB allocated,
// and before it refuses anything.
//
// When the allocator refuses, Lua runs an emergency full collection and tries once more
// before it raises the memory error; but not for the string buffers of the standard
// library (lauxlib's luaL_Buffer, which string.rep, string.format, table.concat, ...
// allocate directly), which fail at once, garbage or not. The allocator cannot collect
// itself (it runs in the middle of Lua's own work), so it notes when the heap comes near
// its limit, and those library functions run a full collection first when it has.
#include "ipc_lua.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/// How many bytes may be allocated between two looks at the address space.
#define LOOK_EVERY ((size_t)4 << 20)

static struct {
    size_t used;           // bytes the Lua heap holds (what lua_gc's count says)
    size_t limit;          // the heap's own limit (0: none)
    size_t space_limit;    // RLIMIT_AS (0: none)
    size_t data_limit;     // RLIMIT_DATA (0: none)
    size_t reserve;        // of those, what the heap leaves to the host
    size_t ceiling;        // `used` may not pass this, as of the last look
    size_t since_look;     // bytes allocated since then
    int near;              // the heap came near its limit: collect before building a string
    size_t collected_at;   // `used` after the last such collection
    int sure;              // the next small block must not be refused (ipc_lua_pushsmall)
    size_t large;          // of `used`, the bytes in blocks of IPC_LUA_KEEP_MIN or more
} mem = {0, 0, 0, 0, 0, SIZE_MAX, 0, 0, 0, 0, 0};

// A small string is pushed without a protected call: its object is one block of at most
// SMALL_BLOCK bytes, which the allocator does not refuse (the heap may pass its limit by
// that much), and which, if malloc itself refuses it, it takes from `spare`. Blocks taken
// from there are never given back (malloc refusing a small block is rare and the end of
// the process near); once it is used up, small strings are pushed protected too.
#define SMALL_BLOCK (IPC_LUA_SMALL_STRING + 64)
static _Alignas(16) unsigned char spare[64 * SMALL_BLOCK];
static size_t spare_used;

// The last large blocks Lua freed, kept for the next large allocations: a process that
// receives large messages one after another gets the same pages back, where glibc would
// map each block above 32 MiB afresh, and every page of a fresh mapping faults on first
// touch (that costs more than the copy into it). Up to four, because the collector frees
// garbage in bursts, after a cycle: several large strings are made before those before
// them are freed (as many as fit in the garbage the collector lets pile up between two
// cycles: the blocks kept take the place of that garbage). They count against the heap's
// limit, and are freed before the allocator refuses anything, and by a full collection
// the script asks for.
#define KEPT_SLOTS 4
static struct {
    void *block;
    size_t size;
} kept[KEPT_SLOTS];  // kept[0] the older

/// The bytes of all blocks kept.
static size_t kept_bytes(void) {
    size_t n = 0;
    for (int i = 0; i < KEPT_SLOTS; i++) n += kept[i].size;
    return n;
}

/// The host's release hook (ipc_lua_setreleasehook).
static void (*release_hook)(void);

// A new large block (a long string: a message received, say) is faulted in at once
// (MADV_POPULATE_WRITE, Linux 5.14; ignored before): one call maps every page, where
// the copy that fills it would take a fault per 4 KiB (25% more time here for 64 MiB).
// Lua fills a new block whole (a string's bytes, a table's slots), so this takes no page
// that would not be touched anyway. Grown blocks are not populated: their new part may
// stay unused.
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_MIN ((size_t)4 << 20)
static void populate(void *p, size_t n) {
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

static int in_spare(const void *p) {
    return (const unsigned char *)p >= spare && (const unsigned char *)p < spare + sizeof spare;
}

/// What the heap may reach now (SIZE_MAX: no limit).
static size_t cap(void) { return mem.limit != 0 && mem.limit < mem.ceiling ? mem.limit : mem.ceiling; }

/// "Near the limit": within an eighth of it (at least 1 MiB), and, after a collection, an
/// eighth of that again above what the collection left (so that a heap whose live data
/// sits near the limit is not collected again at every call).
static void note_size(void) {
    size_t c = cap();
    if (c == SIZE_MAX) return;
    size_t band = c / 8 < ((size_t)1 << 20) ? (size_t)1 << 20 : c / 8;
    size_t from = c > band ? c - band : 0;
    if (mem.collected_at + band / 2 > from) from = mem.collected_at + band / 2;
    if (mem.used > from) mem.near = 1;
}

/// The address space and the private data of this process, in bytes (/proc/self/statm
/// counts pages: size resident shared text lib data dt). No allocation: a stack buffer.
int ipc_lua_addressspace(size_t *size, size_t *data) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[160];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return 0;
    text[n] = 0;
    unsigned long long v[6];
    if (sscanf(text, "%llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *size = (size_t)v[0] * page;
    *data = (size_t)v[5] * page;
    return 1;
}

static size_t room(size_t limit, size_t taken) {
    if (limit == 0) return SIZE_MAX;
    return limit > taken && limit - taken > mem.reserve ? limit - taken - mem.reserve : 0;
}

/// Sets the ceiling from the address space as it is now (kept as it was if /proc cannot
/// be read: descriptors exhausted, say).
static void look(void) {
    mem.since_look = 0;
    if (mem.space_limit == 0 && mem.data_limit == 0) { mem.ceiling = SIZE_MAX; return; }
    size_t size, data;
    if (!ipc_lua_addressspace(&size, &data)) return;
    size_t r = room(mem.space_limit, size);
    size_t d = room(mem.data_limit, data);
    if (d < r) r = d;
    mem.ceiling = r > SIZE_MAX - mem.used ? SIZE_MAX : mem.used + r;
}

/// May the heap grow by `grow` bytes while `held` bytes stay kept?
static int may_grow(size_t grow, size_t held) {
    size_t total = mem.used + held;
    if (mem.limit != 0 && (total > mem.limit || grow > mem.limit - total)) return 0;
    if (mem.ceiling == SIZE_MAX && mem.space_limit == 0 && mem.data_limit == 0) return 1;
    mem.since_look += grow;
    int over = mem.used > mem.ceiling || grow > mem.ceiling - mem.used;
    if (over || mem.since_look >= LOOK_EVERY) {
        look();
        over = mem.used > mem.ceiling || grow > mem.ceiling - mem.used;
    }
    return !over;
}

void ipc_lua_dropkept(void) {
    for (int i = 0; i < KEPT_SLOTS; i++) {
        free(kept[i].block);
        kept[i].block = NULL;
        kept[i].size = 0;
    }
}

/// Keeps a block Lua freed, freeing the oldest one kept when every slot is taken.
static void keep(void *block, size_t size) {
    if (kept[KEPT_SLOTS - 1].block != NULL) {
        free(kept[0].block);
        for (int i = 0; i + 1 < KEPT_SLOTS; i++) kept[i] = kept[i + 1];
        kept[KEPT_SLOTS - 1].block = NULL;
        kept[KEPT_SLOTS - 1].size = 0;
    }
    for (int i = 0; i < KEPT_SLOTS; i++) {
        if (kept[i].block == NULL) {
            kept[i].block = block;
            kept[i].size = size;
            return;
        }
    }
}

size_t ipc_lua_memorykept(void) { return kept_bytes(); }

void ipc_lua_setreleasehook(void (*release)(void)) { release_hook = release; }

/// May the heap grow by `grow` bytes? When not, gives back the kept block and what the
/// host can spare, looks at the address space again, and answers after that.
static int may_grow_releasing(size_t grow, size_t held) {
    if (may_grow(grow, held)) return 1;
    if (kept_bytes() == 0 && release_hook == NULL) return 0;
    ipc_lua_dropkept();
    if (release_hook != NULL) release_hook();
    if (mem.space_limit != 0 || mem.data_limit != 0) look();
    return may_grow(grow, 0);
}

/// A new block of `nsize` (at least IPC_LUA_KEEP_MIN) bytes made of a kept one whose
/// size is close (within a factor of two), the closest; NULL when none is.
static void *reuse_kept(size_t nsize) {
    int best = -1;
    size_t gap = SIZE_MAX;
    for (int i = 0; i < KEPT_SLOTS; i++) {
        size_t k = kept[i].size;
        if (kept[i].block == NULL || k / 2 > nsize || k < nsize / 2) continue;
        size_t d = k > nsize ? k - nsize : nsize - k;
        if (d < gap) { gap = d; best = i; }
    }
    if (best < 0) return NULL;
    // Shrinking is in place; growing a mapped block remaps it (its pages come along).
    void *p = kept[best].size == nsize ? kept[best].block : realloc(kept[best].block, nsize);
    if (p == NULL) return NULL;  // the kept block is still there
    for (int i = best; i + 1 < KEPT_SLOTS; i++) kept[i] = kept[i + 1];
    kept[KEPT_SLOTS - 1].block = NULL;
    kept[KEPT_SLOTS - 1].size = 0;
    return p;
}

static void *allocate(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud;
    size_t old = ptr != NULL ? osize : 0;  // without a block, osize tells its type
    if (ptr != NULL && in_spare(ptr)) {
        // Lua never grows a string's block; freeing one leaves it where it is.
        if (nsize > old) return NULL;
        mem.used -= old - nsize;
        return nsize == 0 ? NULL : ptr;
    }
    if (nsize == 0) {
        if (old >= IPC_LUA_KEEP_MIN) {
            mem.large -= old;
            keep(ptr, old);
        } else {
            free(ptr);
        }
        mem.used -= old;
        return NULL;
    }
    int sure = mem.sure && ptr == NULL && nsize <= SMALL_BLOCK;
    if (sure) mem.sure = 0;
    // A new large block may be made of a kept one (counted out here: when none fits,
    // they are freed first).
    int large = ptr == NULL && nsize >= IPC_LUA_KEEP_MIN;
    // Shrinking never fails (Lua counts on it).
    if (nsize > old && !sure && !may_grow_releasing(nsize - old, large ? 0 : kept_bytes())) {
        mem.near = 1;
        return NULL;
    }
    void *p = large ? reuse_kept(nsize) : NULL;
    if (p == NULL) {
        // None fits: those kept may not take the heap past its limit beside the new one.
        if (large && mem.limit != 0 && mem.used + nsize + kept_bytes() > mem.limit) ipc_lua_dropkept();
        p = realloc(ptr, nsize);
        if (p != NULL && ptr == NULL && nsize >= POPULATE_MIN) populate(p, nsize);
    }
    if (p == NULL && sure && spare_used + SMALL_BLOCK <= sizeof spare) {
        p = spare + spare_used;
        spare_used += SMALL_BLOCK;
    }
    if (p == NULL) {
        mem.near = 1;
        return NULL;
    }
    mem.used = mem.used - old + nsize;
    if (nsize >= IPC_LUA_KEEP_MIN) mem.large += nsize;
    if (old >= IPC_LUA_KEEP_MIN) mem.large -= old;
    if (nsize > old) note_size();
    return p;
}

// A library function that builds its result in a luaL_Buffer, run after a full
// collection when the heap has come near its limit (a C closure: the original is its
// upvalue, called directly, in this frame).
static int collecting_first(lua_State *L) {
    if (mem.near && lua_gc(L, LUA_GCCOLLECT) == 0) {  // (not inside a finalizer: -1)
        mem.near = 0;
        mem.collected_at = mem.used;
    }
    lua_CFunction original = (lua_CFunction)lua_touserdata(L, lua_upvalueindex(1));
    return original(L);
}

// collectgarbage, which also frees the blocks kept when it runs a full collection: a
// script that asks for one wants the memory back.
static int collecting_all(lua_State *L) {
    int full = lua_isnoneornil(L, 1) || (lua_type(L, 1) == LUA_TSTRING && strcmp(lua_tostring(L, 1), "collect") == 0);
    lua_CFunction original = (lua_CFunction)lua_touserdata(L, lua_upvalueindex(1));
    int n = original(L);
    if (full) ipc_lua_dropkept();
    return n;
}

/// Replaces t[name] (a C function without upvalues) with `wrapper` over it.
static void wrap(lua_State *L, int t, const char *name, lua_CFunction wrapper) {
    if (lua_getfield(L, t, name) == LUA_TFUNCTION && lua_iscfunction(L, -1) && lua_getupvalue(L, -1, 1) == NULL) {
        lua_CFunction original = lua_tocfunction(L, -1);
        lua_pop(L, 1);
        lua_pushlightuserdata(L, (void *)original);
        lua_pushcclosure(L, wrapper, 1);
        lua_setfield(L, t, name);
    } else {
        lua_pop(L, 1);
    }
}

void ipc_lua_guardbuffers(lua_State *L) {
    static const char *const string[] = {"rep", "format", "gsub", "char", "reverse", "upper", "lower", "pack", "dump", NULL};
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L);
    if (lua_getfield(L, loaded, LUA_GNAME) == LUA_TTABLE) wrap(L, lua_gettop(L), "collectgarbage", collecting_all);
    lua_pop(L, 1);
    if (lua_getfield(L, loaded, LUA_STRLIBNAME) == LUA_TTABLE) {
        for (int i = 0; string[i] != NULL; i++) wrap(L, lua_gettop(L), string[i], collecting_first);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, loaded, LUA_TABLIBNAME) == LUA_TTABLE) wrap(L, lua_gettop(L), "concat", collecting_first);
    lua_pop(L, 1);
    if (lua_getfield(L, loaded, LUA_UTF8LIBNAME) == LUA_TTABLE) wrap(L, lua_gettop(L), "char", collecting_first);
    lua_pop(L, 1);
    if (lua_getfield(L, loaded, LUA_IOLIBNAME) == LUA_TTABLE) wrap(L, lua_gettop(L), "read", collecting_first);
    lua_pop(L, 1);
    // file:read, in the methods of the file handles' metatable
    if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE && lua_getfield(L, -1, "__index") == LUA_TTABLE) {
        wrap(L, lua_gettop(L), "read", collecting_first);
    }
    lua_settop(L, loaded - 1);
}

/// True when a kept block would make a new block of `nsize` bytes (see reuse_kept).
static int kept_fits(size_t nsize) {
    for (int i = 0; i < KEPT_SLOTS; i++) {
        size_t k = kept[i].size;
        if (kept[i].block != NULL && k / 2 <= nsize && k >= nsize / 2) return 1;
    }
    return 0;
}

static int p_collect(lua_State *L) {
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}

// A string of COLLECT_FOR bytes or more (a large message received), with no kept block
// to make it of, would take fresh pages, each faulted and cleared (20-30 ms for 64 MiB
// here): the strings made before it are usually garbage by now, waiting for a cycle of
// the collector. A full collection first frees them into the kept blocks, when the rest
// of the heap is small beside the string (the collection's cost grows with the rest,
// not with the large blocks).
#define COLLECT_FOR ((size_t)16 << 20)
void ipc_lua_collectfor(lua_State *L, size_t len) {
    if (len < COLLECT_FOR || lua_getallocf(L, NULL) != allocate || kept_fits(len) || mem.large < len) return;
    if ((mem.used - mem.large) > len / 8) return;
    if (!lua_checkstack(L, 1)) return;
    lua_pushcfunction(L, p_collect);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) lua_pop(L, 1);
}

int ipc_lua_pushsmall(lua_State *L, const char *s, size_t len) {
    ipc_lua_collectfor(L, len);
    if (len > IPC_LUA_SMALL_STRING || spare_used + SMALL_BLOCK > sizeof spare || lua_getallocf(L, NULL) != allocate) {
        // (A state made with another allocator, as the codec's tests and fuzzer make, has
        // no such promise.)
        return ipc_lua_p_pushlstring(L, s, len);
    }
    // Its one allocation is the string's block (a string table that cannot grow stays as
    // it is); the collector step after it raises nothing (finalizers run protected).
    mem.sure = 1;
    lua_pushlstring(L, s, len);
    mem.sure = 0;
    return LUA_OK;
}

void ipc_lua_setmemorylimit(size_t bytes) { mem.limit = bytes; }

void ipc_lua_setaddresslimits(size_t space, size_t data, size_t reserve) {
    mem.space_limit = space;
    mem.data_limit = data;
    mem.reserve = reserve;
    look();
}

size_t ipc_lua_memoryused(void) { return mem.used; }

// The panic and warning functions of luaL_newstate (lauxlib.c), which lua_newstate does
// not set: Lua 5.4's, but for the panic, which ends the process with status 1 and a
// message rather than abort (a signal).

static int panic(lua_State *L) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
    fflush(NULL);
    dprintf(2, "ipcplay: unprotected error in a call to the Lua API (%s)\n", msg);
    _exit(1);
}

static void warnfoff(void *ud, const char *message, int tocont);
static void warnfon(void *ud, const char *message, int tocont);
static void warnfcont(void *ud, const char *message, int tocont);

/// "@on" and "@off" switch warnings on and off; returns 1 for such a control message.
static int checkcontrol(lua_State *L, const char *message, int tocont) {
    if (tocont || *(message++) != '@') return 0;
    if (strcmp(message, "off") == 0) lua_setwarnf(L, warnfoff, L);
    else if (strcmp(message, "on") == 0) lua_setwarnf(L, warnfon, L);
    return 1;
}

static void warnfoff(void *ud, const char *message, int tocont) {
    checkcontrol((lua_State *)ud, message, tocont);
}

static void warnfcont(void *ud, const char *message, int tocont) {
    lua_State *L = (lua_State *)ud;
    fputs(message, stderr);
    if (tocont) {
        lua_setwarnf(L, warnfcont, L);
    } else {
        fputs("\n", stderr);
        fflush(stderr);
        lua_setwarnf(L, warnfon, L);
    }
}

static void warnfon(void *ud, const char *message, int tocont) {
    if (checkcontrol((lua_State *)ud, message, tocont)) return;
    fputs("Lua warning: ", stderr);
    warnfcont(ud, message, tocont);
}

lua_State *ipc_lua_newstate(void) {
    lua_State *L = lua_newstate(allocate, NULL);
    if (L != NULL) {
        lua_atpanic(L, panic);
        lua_setwarnf(L, warnfoff, L);  // off by default, as in lua.c
    }
    return L;
}
