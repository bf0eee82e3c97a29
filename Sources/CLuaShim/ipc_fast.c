// The C fast paths of the hottest calls: an uncontended lock and unlock, reading and
// writing `v.value`, putting and taking a small item on a queue or a pipe, and marking a
// joinable queue's item done, with no Swift frame. They apply only while no hook watches
// the gate (`ipc_gate_hooked`: no trace, no jitter, no controlled scheduler), and only in
// the simple case; everything else (a timeout, a lock taken, a value that does not fit,
// a wrong `self`) falls back to the Swift binding, through the gate. The shared
// structures' protocols are not here: they are CSystemShim's (ipc_queue.c, ipc_channel.c,
// ipc_sync.h), which the Swift core calls too; this file is the Lua side of the fast
// paths (arguments, values, errors).
#include "ipc_lua.h"
#include "ipc_channel.h"
#include "ipc_queue.h"
#include "ipc_run.h"
#include "ipc_sync.h"

#include <sched.h>
#include <limits.h>
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
    void *shared;  // NULL when the fast paths must leave it to Swift (closed)
    const void *tag;
    // A connection's read and write ends and the directions (inboxes) they serve; a
    // queue's eventfd in `fd_out` (written to wake `ipc.wait`); -1 when none.
    int32_t fd_in, fd_out;
    int32_t dir_in, dir_out;
} ipc_box;

size_t ipc_lua_box_size(void) { return sizeof(ipc_box); }

void ipc_lua_box_init(void *block, void *shared, const void *tag, int fd_in, int fd_out, int dir_in, int dir_out) {
    ipc_box *b = block;
    b->object = NULL;
    b->shared = shared;
    b->tag = tag;
    b->fd_in = fd_in;
    b->fd_out = fd_out;
    b->dir_in = dir_in;
    b->dir_out = dir_out;
}

/// The box of `self` (index 1) when it is a live ipc object tagged `tag`. The length is
/// checked first: any other userdata (an io file, say) is smaller or larger, and a value
/// of another type has no block.
static ipc_box *box_of(lua_State *L, const void *tag) {
    if (lua_rawlen(L, 1) != sizeof(ipc_box)) return NULL;
    ipc_box *b = lua_touserdata(L, 1);
    return b != NULL && b->tag == tag && b->object != NULL && b->shared != NULL ? b : NULL;
}

// MARK: - Locks

enum {
    FAST_ACQUIRE = 1, FAST_RELEASE = 2,  // a lock's
    FAST_PUT = 3, FAST_GET = 4,          // a queue's
    FAST_SEND = 5, FAST_RECV = 6,        // a connection's, values
    FAST_SEND_BYTES = 7, FAST_RECV_BYTES = 8,  // and raw bytes
    FAST_SEM_ACQUIRE = 9, FAST_SEM_RELEASE = 10,  // a semaphore's
    FAST_VALUE_ADD = 11,                           // a value's add
    FAST_PUT_NOWAIT = 12, FAST_GET_NOWAIT = 13,    // a queue's, never waiting
    FAST_TASK_DONE = 14,                           // a joinable queue's task_done
};

/// The warning the Swift side gives when a lock's holder died (Blocking.recoveredFromDeadHolder).
static void warn_takeover(const char *name, uint32_t dead, const char *call) {
    fflush(NULL);
    char line[256];
    int n = snprintf(line, sizeof line, "ipcplay: warning: %s was held by process %u, which died; %s took it over\n",
                     name, dead, call);
    size_t left = n > 0 ? ((size_t)n < sizeof line ? (size_t)n : sizeof line - 1) : 0;
    const char *p = line;
    while (left > 0) {
        ssize_t w = IPC_RETRY_EINTR(ipc_write2(2, p, left, NULL, 0));
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
}

/// What a fast method needs to know, made once when the method is registered.
typedef struct fast_spec {
    int operation;       // FAST_ACQUIRE and the others above
    long lock_offset;    // of the robust lock in the object's shared memory (a queue's state lock)
    long name_offset;    // of the object's name there
    int recursive;
    const void *tag;     // the metatable of its kind (see ipc_box)
    char call[48];       // "value:lock", from its declaration: for a warning and an error
} fast_spec;

/// The object of a fast method called with `nargs` arguments (self included) while no
/// hook watches the gate, and the method's spec (upvalue 5); NULL when the call is for
/// the Swift binding.
static ipc_box *fast_self(lua_State *L, int nargs, const fast_spec **spec) {
    if (ipc_gate_hooked || lua_gettop(L) != nargs) return NULL;
    *spec = lua_touserdata(L, lua_upvalueindex(5));
    return box_of(L, (*spec)->tag);
}

/// Tries of an internal lock (a queue's state lock, a pipe's) before the fast path
/// gives up (as Spin.lockSpins).
#define FAST_LOCK_SPINS 2000

/// Takes a lock found free, or come free within the same short spin as
/// RobustLock.acquire's (a holder on another CPU is usually about to release): 1 when
/// taken, 0 when it stays taken (the Swift side then waits for it). A holder that died in
/// the instant between the look and the take leaves it to us: `repair(object, index)`
/// puts right what it left half done (the protocol's own repair, as the Swift side's),
/// then it is made consistent, with the Swift side's warning.
static int take_lock(ipc_robust_lock *lk, int max_gap, uint32_t me, void (*repair)(void *, int), void *object, int index,
                     const char *name, const char *call) {
    uint32_t dead;
    switch (ipc_robust_lock_take(lk, FAST_LOCK_SPINS, max_gap, me, &dead)) {
    case IPC_LOCK_BUSY: return 0;
    case IPC_LOCK_TAKEN_OVER:
        if (repair != NULL) repair(object, index);
        ipc_robust_lock_consistent(lk);
        warn_takeover(name, dead, call);
        return 1;
    default: return 1;
    }
}

// Upvalues: 1 the Swift binding (fallback), 2 and 3 its entry and kind, 4 the metatable,
// 5 the method's fast_spec.
static int fast_lock_method(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 1, &spec);
    uint32_t me = (uint32_t)ipc_self_pid;
    if (b == NULL || me == 0) return ipc_lua_trampoline(L);  // (pid 0: not read yet; the Swift side knows)
    ipc_robust_lock *lk = (ipc_robust_lock *)((char *)b->shared + spec->lock_offset);
    if (spec->operation == FAST_ACQUIRE) {
        int mine = ipc_owned_lock_reenter(lk, spec->recursive, me);
        if (mine == IPC_OWNED_NOT_MINE
            && take_lock(lk, IPC_OWNED_LOCK_MAX_GAP, me, NULL, NULL, 0, (const char *)b->shared + spec->name_offset, spec->call)) {
            lk->depth = 1;
            mine = IPC_OWNED_REENTERED;
        }
        if (mine == IPC_OWNED_REENTERED) {
            lua_pushboolean(L, 1);
            return 1;
        }
    } else if (ipc_owned_lock_release(lk, me)) {
        return 0;
    }
    return ipc_lua_trampoline(L);
}

/// Pushes the value a message of `length` bytes encodes, or raises as the Swift side
/// does (LuaState.decodeFailure).
static int push_decoded(lua_State *L, const unsigned char *bytes, size_t length, const char *call) {
    if (ipc_lua_decodesimple(L, bytes, length)) return 1;
    char why[160];
    switch (ipc_lua_decode(L, bytes, length, why, sizeof why)) {
    case IPC_DECODE_OK: return 1;
    case IPC_DECODE_MEMORY:
        return luaL_error(L, "%s: not enough memory to decode a %d bytes message (it is lost)", call, (int)length);
    case IPC_DECODE_MALFORMED: return luaL_error(L, "%s: malformed message: %s", call, why);
    default: return luaL_error(L, "%s: %s", call, why);
    }
}

// MARK: - Queues

// A small item put on a queue or taken from it (ipc_queue.h's `ipc_queue_put_single` and
// `ipc_queue_take_single`, which MessageQueue.swift calls too): the state lock taken at
// once or within a short spin, an item of one frame, room in the ring (an item in it)
// without a wait. Anything else (a full or empty queue, a timeout argument, a table, a
// long string, a streamed item in the way) goes to the Swift binding, through the gate.

/// Payload bytes of an item the fast paths carry (encoded and decoded on the C stack).
#define FAST_ITEM_MAX 256
/// Looks at an empty queue, a full one, an empty pipe or a semaphore at 0 before the
/// fast path leaves the wait to Swift (as Spin.waitSpins): the other side usually acts
/// within that time, and the call then costs no trip through the binding.
#define FAST_WAIT_SPINS 2000

/// Pause `i` of a wait's spin: every 64th yields the CPU (as Spin.until), so that the
/// process we wait for runs at once when it shares our CPU (more processes than CPUs).
static void wait_pause(int i) {
    if (i % 64 == 63) sched_yield(); else ipc_pause();
}

static void roll_back_queue(void *h, int unused) {
    (void)unused;
    ipc_queue_roll_back(h);
}

/// Takes the queue's state lock for this process (see take_lock); 0 when the call is for
/// the Swift binding (the lock stays taken, or the pid is not read yet: the Swift side knows).
static int lock_state(ipc_queue_header *h, const fast_spec *spec) {
    uint32_t me = (uint32_t)ipc_self_pid;
    return me != 0 && take_lock(&h->state_lock, 1, me, roll_back_queue, h, 0, h->name, spec->call);
}

/// A short wait for room in a bounded queue (the Swift side sleeps when there is none
/// after it). A look every 16 pauses: the consumers write that line under the lock.
static void spin_while_full(ipc_queue_header *h) {
    if (h->maxsize == 0) return;
    for (int spins = 0; ipc_load64(&h->items) >= h->maxsize && spins < FAST_WAIT_SPINS; spins += 16) {
        for (int k = 0; k < 16; k++) wait_pause(spins + k);
    }
}

/// A short wait for an item (the Swift side sleeps when none comes).
static void spin_while_empty(ipc_queue_header *h) {
    for (int spins = 0; ipc_load64(&h->used) == 0 && spins < FAST_WAIT_SPINS; spins++) wait_pause(spins);
}

/// `q:put(item)` and `q:put_nowait(item)`. Upvalues as fast_lock_method's.
static int fast_queue_put(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 2, &spec);
    unsigned char item[FAST_ITEM_MAX];
    size_t n;
    if (b == NULL || (n = ipc_lua_encodesimple(L, 2, item, sizeof item)) == 0) return ipc_lua_trampoline(L);
    ipc_queue_header *h = b->shared;
    if (spec->operation == FAST_PUT) spin_while_full(h);
    if (!lock_state(h, spec)) return ipc_lua_trampoline(L);
    // (Message ids are for traces, and no trace watches.)
    int put = ipc_queue_put_single(h, item, n, NULL, 0, 0, (uint32_t)ipc_self_pid);
    ipc_robust_lock_give(&h->state_lock);
    if (put != 1) return ipc_lua_trampoline(L);  // it waits, or a streamed item goes in first
    ipc_queue_wake_readers(h, b->fd_out, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/// `q:get()` and `q:get_nowait()`. Upvalues as fast_lock_method's.
static int fast_queue_get(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 1, &spec);
    if (b == NULL) return ipc_lua_trampoline(L);
    ipc_queue_header *h = b->shared;
    if (spec->operation == FAST_GET) spin_while_empty(h);
    if (!lock_state(h, spec)) return ipc_lua_trampoline(L);
    unsigned char item[FAST_ITEM_MAX];
    uint32_t length;
    uint64_t id;
    // (A joinable queue's item taken here is never dropped: whether it is joinable does not matter.)
    int taken = ipc_queue_take_single(h, item, sizeof item, &length, &id, (uint32_t)ipc_self_pid, 0);
    int more = taken && h->items > 0 && h->readers_waiting > 0;
    ipc_robust_lock_give(&h->state_lock);
    if (!taken) return ipc_lua_trampoline(L);
    ipc_queue_wake_writers(h);
    if (more) ipc_queue_wake_readers(h, b->fd_out, 0);
    // The item is ours now; only its decoding is left (no lock held: it may raise).
    return push_decoded(L, item, length, spec->call);
}

/// `q:task_done()` (a joinable queue's): ipc_queue_task_done under the state lock. A call
/// with no item unfinished goes to Swift, which raises.
static int fast_queue_task_done(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 1, &spec);
    if (b == NULL || !lock_state(b->shared, spec)) return ipc_lua_trampoline(L);
    ipc_queue_header *h = b->shared;
    int done = ipc_queue_task_done(h);
    ipc_robust_lock_give(&h->state_lock);
    if (done == IPC_TASK_NONE_UNFINISHED) return ipc_lua_trampoline(L);
    if (done == IPC_TASK_DONE_WAKE_JOINERS) ipc_queue_wake_joiners(h);
    return 0;
}

// MARK: - Pipes

// A message of one small frame sent or received (ipc_channel.h's protocol, which
// Connection.swift follows too): the lock taken at once or within a short spin, the frame
// written whole at once, or put straight into a receiver's inbox, or found whole in the
// inbox and the pipe. Anything else (a full pipe, an empty one after a short spin, a
// frame that is not whole and valid, a message of several frames, a closed end, a timeout
// argument) goes to the Swift binding.

/// The largest payload `recv` takes here (a string this long needs no protected push).
#define FAST_RECEIVE_MAX IPC_LUA_SMALL_STRING

/// The repairs of a pipe's locks taken over from a dead holder.
static void fence_lane(void *channel, int direction) { ipc_channel_fence(channel, direction); }
static void recover_inbox(void *channel, int direction) { ipc_inbox_recover(channel, direction); }

/// `c:send(value)` and `c:send_bytes(string)`. Upvalues as fast_lock_method's.
static int fast_pipe_send(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 2, &spec);
    uint32_t me = (uint32_t)ipc_self_pid;
    if (b == NULL || me == 0 || b->fd_out < 0) return ipc_lua_trampoline(L);
    int raw = spec->operation == FAST_SEND_BYTES;
    unsigned char frame[PIPE_BUF];
    unsigned char *payload = frame + IPC_PIPE_FRAME_HEADER;
    size_t n;
    if (raw) {
        if (lua_type(L, 2) != LUA_TSTRING) return ipc_lua_trampoline(L);
        const char *p = lua_tolstring(L, 2, &n);
        if (n > IPC_PIPE_FRAME_MAX) return ipc_lua_trampoline(L);
        memcpy(payload, p, n);
    } else if ((n = ipc_lua_encodesimple(L, 2, payload, IPC_PIPE_FRAME_MAX)) == 0) {
        return ipc_lua_trampoline(L);
    }
    ipc_channel_header *h = b->shared;
    int direction = b->dir_out;
    ipc_robust_lock *lk = &h->send_lock[direction].lock;
    if (!take_lock(lk, 1, me, fence_lane, h, direction, h->name, spec->call)) return ipc_lua_trampoline(L);
    uint32_t word = (uint32_t)n | IPC_PIPE_FIRST | IPC_PIPE_LAST | (raw ? IPC_PIPE_RAW : 0);
    // (Trace ids are for traces, and no trace watches.)
    uint32_t sequence = ipc_channel_number_frame(h, direction, frame, word, payload, n, 0);
    size_t length = IPC_PIPE_FRAME_HEADER + n;
    uint32_t dead;
    int sent = ipc_channel_put_direct(h, direction, b->fd_out, frame, length, sequence, me, &dead);
    if (dead != 0) warn_takeover(h->name, dead, spec->call);
    if (!sent) {
        if (ipc_channel_write_frame(h, direction, b->fd_out, frame, length, NULL, 0) != (ssize_t)length) {
            // A full pipe (it waits for room) or no reader left: the Swift side says which.
            ipc_robust_lock_give(lk);
            return ipc_lua_trampoline(L);
        }
        ipc_store32_release(&ipc_channel_inbox_of(h, direction)->written, sequence);
    }
    ipc_robust_lock_give(lk);
    lua_pushboolean(L, 1);
    return 1;
}

/// ipc_inbox_fill, trusting the counters, with a short wait (the lock held) for the rest
/// of a frame that is partly there: IPC_FILL_READY; IPC_FILL_EMPTY when the inbox and the
/// pipe are empty (`seen`: the senders' counter before the look), for the caller to wait
/// without the lock; IPC_FILL_CLOSED when the Swift side is to wait or say why.
static int fill_now(ipc_channel_inbox *box, int fd, uint64_t minimum, uint32_t *seen) {
    for (;;) {
        int filled = ipc_inbox_fill(box, fd, minimum, 1, seen);
        if (filled != IPC_FILL_EMPTY) return filled;
        ipc_inbox_state st = ipc_inbox_load(box);
        if (st.end == st.start) return IPC_FILL_EMPTY;
        int spins = 0;
        while (ipc_load32(&box->written) == *seen && spins < FAST_WAIT_SPINS) wait_pause(spins++);
        if (spins == FAST_WAIT_SPINS) return IPC_FILL_CLOSED;
    }
}

/// Waits (the receive lock released) until a sender has written a frame after `seen`,
/// or put one straight into the inbox. 1 when one came within the fast path's spin; 0
/// when the wait is for Swift (which holds the lock while it waits: no direct puts).
/// `spins` counts the pauses of every wait of one call: one that other receivers keep
/// beating to the frames goes to Swift (and sleeps) as one that sees none would.
static int await_frame(ipc_channel_inbox *box, uint32_t me, uint32_t seen, int *spins) {
    while (ipc_load32(&box->written) == seen && *spins < FAST_WAIT_SPINS) wait_pause((*spins)++);
    if (*spins < FAST_WAIT_SPINS) return 1;
    uint32_t expected = me;
    ipc_cas32(&box->receiver, &expected, 0);  // unless another receiver came since
    return 0;
}

/// `c:recv()` and `c:recv_bytes()`. Upvalues as fast_lock_method's.
static int fast_pipe_recv(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 1, &spec);
    uint32_t me = (uint32_t)ipc_self_pid;
    if (b == NULL || me == 0 || b->fd_in < 0) return ipc_lua_trampoline(L);
    ipc_channel_header *h = b->shared;
    int direction = b->dir_in;
    ipc_robust_lock *lk = &h->recv_lock[direction].lock;
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    unsigned char payload[FAST_RECEIVE_MAX];
    uint32_t word = 0, length = 0, seen = 0;
    int taken = 0, filled, spins = 0;
    // Senders may put frames straight into the inbox while we receive (put_direct); the
    // word is cleared when this process closes the end, waits in Swift, or ends.
    if (ipc_load32(&box->receiver) != me && ipc_exit_note_word(&box->receiver)) ipc_store32(&box->receiver, me);
    for (;;) {
        if (!take_lock(lk, 1, me, recover_inbox, h, direction, h->name, spec->call)) return ipc_lua_trampoline(L);
        filled = fill_now(box, b->fd_in, IPC_PIPE_FRAME_HEADER, &seen);
        if (filled != IPC_FILL_EMPTY) break;
        ipc_robust_lock_give(lk);
        if (!await_frame(box, me, seen, &spins)) return ipc_lua_trampoline(L);
    }
    uint32_t crc, sequence;
    uint64_t id;
    // One whole, valid frame that is a whole message; anything else is left to Swift (it
    // slides past bytes that are not a frame, and gathers messages of several).
    if (filled == IPC_FILL_READY && ipc_inbox_frame(h, box, &word, &crc, &sequence, &id)
        && (length = word & IPC_PIPE_LENGTH_MASK) <= FAST_RECEIVE_MAX
        && (word & (IPC_PIPE_FIRST | IPC_PIPE_LAST | IPC_PIPE_LANE)) == (IPC_PIPE_FIRST | IPC_PIPE_LAST)
        && fill_now(box, b->fd_in, IPC_PIPE_FRAME_HEADER + length, &seen) == IPC_FILL_READY) {
        const unsigned char *at = ipc_inbox_front(box, ipc_inbox_load(box));
        if (ipc_crc32c(0, at + IPC_PIPE_FRAME_HEADER, length) == crc) {
            memcpy(payload, at + IPC_PIPE_FRAME_HEADER, length);
            ipc_inbox_consume_frame(h, direction, sequence, length);
            taken = 1;
        }
    }
    ipc_robust_lock_give(lk);
    if (!taken) return ipc_lua_trampoline(L);
    // The message is ours now; only making its value is left (no lock held: it may raise).
    if ((word & IPC_PIPE_RAW) || spec->operation == FAST_RECV_BYTES) {
        if (ipc_lua_pushsmall(L, (const char *)payload, length) != LUA_OK) return luaL_error(L, "%s: not enough memory", spec->call);
        return 1;
    }
    return push_decoded(L, payload, length, spec->call);
}

// MARK: - Semaphores

// SharedSemaphore.swift's `acquire` while a unit is there or comes within a short spin,
// and `release` of one unit within the bound (ipc_sync.h, which it calls too); anything
// else goes to the Swift binding.

/// `s:acquire()` and `s:release()`. Upvalues as fast_lock_method's.
static int fast_semaphore(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 1, &spec);
    if (b == NULL) return ipc_lua_trampoline(L);
    ipc_semaphore_header *h = b->shared;
    if (spec->operation == FAST_SEM_ACQUIRE) {
        for (int spins = 0; !ipc_semaphore_try_take(h); spins++) {
            if (spins == FAST_WAIT_SPINS) return ipc_lua_trampoline(L);  // it sleeps there
            wait_pause(spins);
        }
        lua_pushboolean(L, 1);
        return 1;
    }
    return ipc_semaphore_release(h, 1) ? 0 : ipc_lua_trampoline(L);  // over the bound: the Swift side raises
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

/// The integers each integer typecode holds (as a Lua integer: the unsigned 64-bit types
/// up to INT64_MAX here; the Swift side handles the rest).
static const int64_t lo[] = {INT8_MIN, 0, INT16_MIN, 0, INT32_MIN, 0, INT64_MIN, 0, INT64_MIN, 0};
static const int64_t hi[] = {INT8_MAX, UINT8_MAX, INT16_MAX, UINT16_MAX, INT32_MAX, UINT32_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};

/// `v:add(n)` of an integer to a value of a signed integer typecode, when the sum fits
/// (SharedScalars.add: a compare-and-swap loop); anything else goes to the Swift binding,
/// which says why it does not fit. Upvalues as fast_lock_method's.
static int fast_value_add(lua_State *L) {
    const fast_spec *spec;
    ipc_box *b = fast_self(L, 2, &spec);
    if (b == NULL || !lua_isinteger(L, 2)) return ipc_lua_trampoline(L);
    ipc_scalar_header *h = b->shared;
    int t = h->typecode, size = (int)h->item_size;
    if (t > 8 || t % 2 != 0) return ipc_lua_trampoline(L);  // int8, int16, int32, long, int64
    lua_Integer d = lua_tointeger(L, 2);
    uint64_t old = ipc_load_sized(&h->inline_value, size);
    for (;;) {
        int64_t a = size == 1 ? (int8_t)old : size == 2 ? (int16_t)old : size == 4 ? (int32_t)old : (int64_t)old;
        int64_t sum;
        if (__builtin_add_overflow(a, (int64_t)d, &sum) || sum < lo[t] || sum > hi[t]) return ipc_lua_trampoline(L);
        if (ipc_cas_sized(&h->inline_value, size, &old, (uint64_t)sum)) {
            lua_pushinteger(L, sum);
            return 1;
        }
    }
}

/// Stores the Lua value at `i` when it plainly fits; 0 otherwise (the Swift side says why).
static int store_scalar(lua_State *L, int i, ipc_scalar_header *h) {
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

// A value's key "value" (the interned string) and its kind's metatable: the same in every
// value's metamethods, kept here rather than read from upvalues, as each read is a call
// into Lua and these run on every `v.value`. Set when the metamethods are made: a process
// has one Lua state (a second state in one process, as in the unit tests, gets the
// Swift side for its `v.value`, as its key's address differs).
static const void *value_key, *value_tag;

// __index of a value's own method table, for the keys it lacks (fields). Upvalues: 1 the
// kind's method table, 2 its field function (as ipc_lua_index_with_fields's), 3 the value;
// called with the method table, for which the value stands in. No method is named
// "value", so its fast path comes first. No type check of the key: only the string
// "value" has that address (a light userdata made in C to hold it would read the value).
static int fast_own_index(lua_State *L) {
    ipc_box *b = lua_touserdata(L, lua_upvalueindex(3));
    if (!ipc_gate_hooked && lua_topointer(L, 2) == value_key && b->object != NULL && b->shared != NULL) {
        push_scalar(L, b->shared);
        return 1;
    }
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_replace(L, 1);
    return ipc_lua_index_with_fields(L);
}

// __newindex. Upvalues: 1 the Swift binding (fallback), then the key and the metatable.
static int fast_newindex(lua_State *L) {
    if (!ipc_gate_hooked && lua_topointer(L, 2) == value_key) {
        ipc_box *b = box_of(L, value_tag);
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
    return ipc_lua_protect(L, n + 1, 1);
}

int ipc_lua_pushfast(lua_State *L, ipc_swift_function fn, int operation, long lock_offset, long name_offset,
                     int recursive, const char *call) {
    // Stack: entry, kind, metatable. Specs live as long as the process (a few per type).
    fast_spec *spec = malloc(sizeof *spec);
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
    lua_CFunction f = operation == FAST_PUT || operation == FAST_PUT_NOWAIT ? fast_queue_put
                    : operation == FAST_GET || operation == FAST_GET_NOWAIT ? fast_queue_get
                    : operation == FAST_TASK_DONE ? fast_queue_task_done
                    : operation == FAST_SEND || operation == FAST_SEND_BYTES ? fast_pipe_send
                    : operation == FAST_RECV || operation == FAST_RECV_BYTES ? fast_pipe_recv
                    : operation == FAST_SEM_ACQUIRE || operation == FAST_SEM_RELEASE ? fast_semaphore
                    : operation == FAST_VALUE_ADD ? fast_value_add
                                               : fast_lock_method;
    return push_closure(L, f, 5);
}

int ipc_lua_pushfastnewindex(lua_State *L, ipc_swift_function fn) {
    value_key = lua_touserdata(L, -2);
    value_tag = lua_touserdata(L, -1);
    lua_pushlightuserdata(L, (void *)fn);
    lua_insert(L, -3);
    return push_closure(L, fast_newindex, 3);
}

void ipc_lua_box_detach(lua_State *L, int i) {
    if (lua_type(L, i) == LUA_TUSERDATA && lua_rawlen(L, i) == sizeof(ipc_box)) ((ipc_box *)lua_touserdata(L, i))->shared = NULL;
}

// MARK: - Own metatables

// (object, kind's metatable K): the object's own metatable M, a copy of K's string fields
// with M.__index = T, T a copy of K's method table whose metatable's __index is
// fast_own_index over the object (its other upvalues are those of K's __index, an
// ipc_lua_index_with_fields closure). The object's box names its kind (ipc_lua_objecttag). The cycle object ->
// M -> T -> its metatable -> the closure -> object is collected with the object.
static int p_setownmetatable(lua_State *L) {
    lua_settop(L, 2);
    // Registration made K and its __index; a script with the debug library can reach K
    // through the registry, and Lua's API checks no types here: each piece is checked.
    if (lua_type(L, 2) != LUA_TTABLE) return luaL_error(L, "its kind's metatable was replaced");
    lua_pushliteral(L, "__index");
    lua_rawget(L, 2);  // 3: ipc_lua_index_with_fields, over (methods, field function)
    if (lua_tocfunction(L, 3) != ipc_lua_index_with_fields || lua_getupvalue(L, 3, 1) == NULL || lua_getupvalue(L, 3, 2) == NULL
        || lua_type(L, 4) != LUA_TTABLE || lua_type(L, 5) != LUA_TFUNCTION) {
        return luaL_error(L, "its kind's metatable was changed");
    }
    lua_createtable(L, 0, 1);  // 6: T's metatable
    lua_pushvalue(L, 4);
    lua_pushvalue(L, 5);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, fast_own_index, 3);
    lua_setfield(L, 6, "__index");
    lua_createtable(L, 0, 16);  // 7: T, the methods
    for (lua_pushnil(L); lua_next(L, 4);) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 7);
    }
    lua_pushvalue(L, 6);
    lua_setmetatable(L, 7);
    lua_createtable(L, 0, 12);  // 8: M, K's string fields but __index
    for (lua_pushnil(L); lua_next(L, 2);) {
        if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "__index") != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, 8);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, 7);
    lua_setfield(L, 8, "__index");
    lua_pushvalue(L, 8);
    lua_setmetatable(L, 1);
    return 0;
}

int ipc_lua_p_setownmetatable(lua_State *L) {
    if (!lua_checkstack(L, 3)) { lua_pop(L, 1); return LUA_ERRMEM; }
    lua_pushcfunction(L, p_setownmetatable);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    int status = ipc_lua_protect(L, 2, 0);
    lua_pop(L, 1);
    return status;
}

const void *ipc_lua_objecttag(lua_State *L, int i) {
    if (lua_type(L, i) != LUA_TUSERDATA || lua_rawlen(L, i) != sizeof(ipc_box)) return NULL;
    const void *tag = ((ipc_box *)lua_touserdata(L, i))->tag;
    if (tag == NULL) return NULL;
    for (int k = 0; k < 64; k++) {
        if (ipc_metatables[k] == tag) return tag;
    }
    return NULL;
}
