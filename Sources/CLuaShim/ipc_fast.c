// The C fast paths of the hottest calls: an uncontended lock and unlock, and reading and
// writing `v.value`, with no Swift frame. They apply only while no hook watches the gate
// (`ipc_gate_hooked`: no trace, no jitter, no controlled scheduler), and only in the
// simple case; everything else (a timeout, a lock taken, a holder that died, a value
// that does not fit, a wrong `self`) falls back to the Swift binding, through the gate.
#include "ipc_lua.h"
#include "ipc_layouts.h"
#include "ipc_run.h"

#include <errno.h>
#include <stdlib.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const void *ipc_metatables[64];

/// The block of every ipc object's userdata: the Swift object, its shared memory, and the
/// metatable of its kind (its tag: the block says what it is, and a check costs no Lua
/// metatable lookup).
typedef struct ipc_box {
    void *object;
    void *shared;
    const void *tag;
} ipc_box;

/// The box of `self` (index 1) when it is a live ipc object tagged `tag`. The length is
/// checked first: any other userdata (an io file, say) is smaller or larger, and a value
/// of another type has no block.
static ipc_box *box_of(lua_State *L, const void *tag) {
    if (lua_rawlen(L, 1) != sizeof(ipc_box)) return NULL;
    ipc_box *b = lua_touserdata(L, 1);
    return b != NULL && b->tag == tag && b->object != NULL && b->shared != NULL ? b : NULL;
}

// MARK: - Locks

enum { FAST_ACQUIRE = 1, FAST_RELEASE = 2 };

/// Takes a lock found free (its word 0: no holder, no dead one). A holder that died in
/// the instant between the look and the take leaves the lock to us inconsistent: it is
/// taken over as the Swift side does (made consistent, a warning), nothing to repair.
static int take(ipc_robust_lock *lk, uint32_t me, const char *name, const char *call) {
    if (__atomic_load_n(&lk->mutex.__data.__lock, __ATOMIC_RELAXED) != 0) return 0;
    int r = pthread_mutex_trylock(&lk->mutex);
    if (r != 0 && r != EOWNERDEAD) return 0;
    uint32_t dead = lk->holder;
    // As the Swift side: the new holder first, then consistent, then the warning.
    lk->holder = me;
    lk->depth = 1;
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&lk->mutex);
        fflush(NULL);
        char line[256];
        int n = snprintf(line, sizeof line, "ipcplay: warning: %s was held by process %u, which died; %s took it over\n",
                         name, dead, call);
        size_t left = n > 0 ? ((size_t)n < sizeof line ? (size_t)n : sizeof line - 1) : 0;
        const char *p = line;
        while (left > 0) {
            ssize_t w = write(2, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
    }
    return 1;
}

/// What a fast lock method needs to know, made once when the method is registered.
typedef struct fast_lock_spec {
    int operation;       // FAST_ACQUIRE or FAST_RELEASE
    long lock_offset;    // of the robust lock in the object's shared memory
    long name_offset;    // of the object's name there
    int recursive;
    const void *tag;     // the metatable of its kind (see ipc_box)
    char call[48];       // "value:lock", for a warning
} fast_lock_spec;

// Upvalues: 1 the Swift binding (fallback), 2 and 3 its entry and kind, 4 the metatable,
// 5 the method's fast_lock_spec.
static int fast_lock_method(lua_State *L) {
    if (!ipc_gate_hooked && lua_gettop(L) == 1) {
        const fast_lock_spec *spec = lua_touserdata(L, lua_upvalueindex(5));
        ipc_box *b = box_of(L, spec->tag);
        if (b != NULL) {
            ipc_robust_lock *lk = (ipc_robust_lock *)((char *)b->shared + spec->lock_offset);
            int recursive = spec->recursive;
            uint32_t me = (uint32_t)ipc_self_pid;
            if (me == 0) return ipc_lua_trampoline(L);  // the pid not read yet: the Swift side knows
            if (spec->operation == FAST_ACQUIRE) {
                if (lk->holder == me) {
                    if (recursive) {
                        lk->depth++;
                        lua_pushboolean(L, 1);
                        return 1;
                    }
                } else {
                    if (take(lk, me, (const char *)b->shared + spec->name_offset, spec->call)) {
                        lua_pushboolean(L, 1);
                        return 1;
                    }
                }
            } else if (lk->holder == me) {
                if (recursive && lk->depth > 1) {
                    lk->depth--;
                    return 0;
                }
                lk->depth = 0;
                lk->holder = 0;
                pthread_mutex_unlock(&lk->mutex);
                return 0;
            }
        }
    }
    return ipc_lua_trampoline(L);
}

// MARK: - v.value

/// Pushes the value of a shared scalar (typecodes in ScalarType's order).
static void push_scalar(lua_State *L, ipc_scalar_header *h) {
    uint64_t bits = ipc_load_sized(&h->inline_value, (int)h->item_size);
    switch (h->typecode) {
    case 0: lua_pushinteger(L, (int8_t)bits); break;
    case 1: lua_pushinteger(L, (uint8_t)bits); break;
    case 2: lua_pushinteger(L, (int16_t)bits); break;
    case 3: lua_pushinteger(L, (uint16_t)bits); break;
    case 4: lua_pushinteger(L, (int32_t)bits); break;
    case 5: lua_pushinteger(L, (uint32_t)bits); break;
    case 6: case 8: lua_pushinteger(L, (int64_t)bits); break;
    case 7: case 9:
        if (bits <= (uint64_t)LUA_MAXINTEGER) lua_pushinteger(L, (lua_Integer)bits); else lua_pushnumber(L, (lua_Number)bits);
        break;
    case 10: { uint32_t b32 = (uint32_t)bits; float f; memcpy(&f, &b32, 4); lua_pushnumber(L, (lua_Number)f); break; }
    case 11: { double d; memcpy(&d, &bits, 8); lua_pushnumber(L, d); break; }
    case 12: { char c = (char)bits; lua_pushlstring(L, &c, 1); break; }
    default: lua_pushboolean(L, bits != 0); break;
    }
}

/// Stores the Lua value at `i` when it plainly fits; 0 otherwise (the Swift side says why).
static int store_scalar(lua_State *L, int i, ipc_scalar_header *h) {
    static const int64_t lo[] = {INT8_MIN, 0, INT16_MIN, 0, INT32_MIN, 0, INT64_MIN, 0, INT64_MIN, 0};
    static const int64_t hi[] = {INT8_MAX, UINT8_MAX, INT16_MAX, UINT16_MAX, INT32_MAX, UINT32_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    uint64_t bits;
    int t = h->typecode;
    if (t <= 9) {
        if (!lua_isinteger(L, i)) return 0;
        lua_Integer v = lua_tointeger(L, i);
        if (v < lo[t] || v > hi[t]) return 0;
        bits = (uint64_t)v;
    } else if (t == 10 || t == 11) {
        // An integer is converted by the Swift side (rounded once, not via a double).
        if (lua_type(L, i) != LUA_TNUMBER || lua_isinteger(L, i)) return 0;
        double d = lua_tonumber(L, i);
        if (t == 10) {
            if (isfinite(d) && fabs(d) > FLT_MAX) return 0;
            float f = (float)d;
            uint32_t b32;
            memcpy(&b32, &f, 4);
            bits = b32;
        } else {
            memcpy(&bits, &d, 8);
        }
    } else if (t == 13 && lua_type(L, i) == LUA_TBOOLEAN) {
        bits = lua_toboolean(L, i) ? 1 : 0;
    } else {
        return 0;
    }
    ipc_store_sized(&h->inline_value, (int)h->item_size, bits);
    return 1;
}

// __index. Upvalues: 1 the method table, 2 the type's field function, 3 the interned key
// "value" (NULL for types without it), 4 the metatable. No method is named "value", so
// its fast path may come before the method table.
static int fast_index(lua_State *L) {
    if (!ipc_gate_hooked && lua_type(L, 2) == LUA_TSTRING && lua_topointer(L, 2) == lua_touserdata(L, lua_upvalueindex(3))) {
        ipc_box *b = box_of(L, lua_touserdata(L, lua_upvalueindex(4)));
        if (b != NULL) {
            push_scalar(L, b->shared);
            return 1;
        }
    }
    return ipc_lua_index_with_fields(L);
}

// __newindex. Upvalues: 1 the Swift binding (fallback), 2 the key "value", 3 the metatable.
static int fast_newindex(lua_State *L) {
    if (!ipc_gate_hooked && lua_type(L, 2) == LUA_TSTRING && lua_topointer(L, 2) == lua_touserdata(L, lua_upvalueindex(2))) {
        ipc_box *b = box_of(L, lua_touserdata(L, lua_upvalueindex(3)));
        if (b != NULL && store_scalar(L, 3, b->shared)) return 0;
    }
    return ipc_lua_trampoline(L);
}

// MARK: - Making the closures (protected: they allocate)

static int p_closure(lua_State *L) {
    lua_CFunction f = (lua_CFunction)lua_touserdata(L, 1);
    lua_remove(L, 1);
    lua_pushcclosure(L, f, lua_gettop(L));
    return 1;
}

/// Pushes the C closure `f` over the `n` values on the stack top (popped).
static int push_closure(lua_State *L, lua_CFunction f, int n) {
    if (!lua_checkstack(L, 2)) { lua_pop(L, n); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_closure);
    lua_insert(L, -(n + 1));
    lua_pushlightuserdata(L, (void *)f);
    lua_insert(L, -(n + 1));
    int status = lua_pcall(L, n + 1, 1, 0);
    if (status != LUA_OK) lua_pop(L, 1);
    return status;
}

int ipc_lua_pushfastlock(lua_State *L, ipc_swift_function fn, int operation, long lock_offset, long name_offset,
                         int recursive, const char *call) {
    // Stack: entry, kind, metatable. Specs live as long as the process (a few per type).
    fast_lock_spec *spec = malloc(sizeof *spec);
    if (spec == NULL) { lua_pop(L, 3); return LUA_ERRMEM; }
    spec->operation = operation;
    spec->lock_offset = lock_offset;
    spec->name_offset = name_offset;
    spec->recursive = recursive;
    spec->tag = lua_touserdata(L, -1);
    snprintf(spec->call, sizeof spec->call, "%s", call);
    lua_pushlightuserdata(L, spec);
    lua_pushlightuserdata(L, (void *)fn);
    lua_insert(L, -5);
    return push_closure(L, fast_lock_method, 5);
}

int ipc_lua_pushfastindex(lua_State *L) { return push_closure(L, fast_index, 4); }

int ipc_lua_pushfastnewindex(lua_State *L, ipc_swift_function fn) {
    lua_pushlightuserdata(L, (void *)fn);
    lua_insert(L, -3);
    return push_closure(L, fast_newindex, 3);
}
