// The fast operations of the locks and semaphores in shared memory, in one place: the
// Swift core (SharedLock.swift, SharedSemaphore.swift: waits, errors) and the Lua fast
// paths (ipc_fast.c) both call these.
#ifndef IPCPLAY_IPC_SYNC_H
#define IPCPLAY_IPC_SYNC_H

#include "ipc_layouts.h"

// MARK: - A lock a process owns (lock, rlock, a value's lock)

/// What `ipc_owned_lock_reenter` found.
enum { IPC_OWNED_NOT_MINE = 0, IPC_OWNED_REENTERED = 1, IPC_OWNED_HELD_TWICE = -1 };

/// The acquire of a lock the caller may hold already: IPC_OWNED_REENTERED (a re-entrant
/// lock, one level deeper), IPC_OWNED_HELD_TWICE (a plain lock asked again by its holder),
/// or IPC_OWNED_NOT_MINE (the caller takes it as any lock).
static inline int ipc_owned_lock_reenter(ipc_robust_lock *lock, int recursive, uint32_t me) {
    if (lock->holder != me) return IPC_OWNED_NOT_MINE;
    if (!recursive) return IPC_OWNED_HELD_TWICE;
    lock->depth++;
    return IPC_OWNED_REENTERED;
}

/// Releases one level of a lock the caller holds: 1, or 0 when it does not hold it.
static inline int ipc_owned_lock_release(ipc_robust_lock *lock, uint32_t me) {
    if (lock->holder != me) return 0;
    if (lock->depth > 1) {
        lock->depth--;
        return 1;
    }
    lock->depth = 0;
    ipc_robust_lock_give(lock);
    return 1;
}

// MARK: - Semaphores

/// Takes one unit if one is there, without waiting: 1, or 0.
static inline int ipc_semaphore_try_take(ipc_semaphore_header *h) {
    uint32_t v = ipc_load32(&h->value);
    while (v > 0) {
        if (ipc_cas32(&h->value, &v, v - 1)) return 1;
    }
    return 0;
}

/// Adds `n` units, up to the bound (a bounded semaphore's, else INT32_MAX), and wakes as
/// many sleepers: 1, or 0 when the value would pass the bound (nothing changes).
static inline int ipc_semaphore_release(ipc_semaphore_header *h, uint32_t n) {
    uint64_t limit = h->bound >= 0 ? (uint64_t)h->bound : (uint64_t)INT32_MAX;
    uint32_t v = ipc_load32(&h->value);
    do {
        if ((uint64_t)v + n > limit) return 0;
    } while (!ipc_cas32(&h->value, &v, v + n));
    if (ipc_load32(&h->waiters) > 0) ipc_futex_wake(&h->value, n < INT32_MAX ? (int)n : INT32_MAX);
    return 1;
}

#endif
