// A queue's protocol in shared memory, in one place: the journal, where a frame goes in
// the ring, how it is written and published, how it is taken, the wake-ups. The Swift
// core (MessageQueue.swift: waits, streamed items, errors) and the Lua fast paths
// (ipc_fast.c: a small item put or taken with no Swift frame) both call these, so the
// rules of crash recovery are written once. Every function expects the state lock held
// unless it says otherwise.
#ifndef IPCPLAY_IPC_QUEUE_H
#define IPCPLAY_IPC_QUEUE_H

#include "ipc_layouts.h"
#include <string.h>

/// The ring: it follows the header, at IPC_QUEUE_HEADER_SPACE.
static inline unsigned char *ipc_queue_ring(ipc_queue_header *h) { return (unsigned char *)h + IPC_QUEUE_HEADER_SPACE; }

/// The ring bytes of a frame of `payload` bytes (header, payload padded to 8).
static inline uint64_t ipc_queue_frame_size(uint64_t payload) { return IPC_QUEUE_FRAME_HEADER + ((payload + 7) & ~(uint64_t)7); }

// MARK: - The journal

/// Saves the fields an update changes, then marks it in flight: a process killed before
/// `ipc_queue_end_update` leaves them for the next locker to restore.
static inline void ipc_queue_begin_update(ipc_queue_header *h, uint32_t kind) {
    h->journal.head = h->head;
    h->journal.tail = h->tail;
    h->journal.used = h->used;
    h->journal.items = h->items;
    h->journal.unfinished = h->unfinished;
    h->journal.stream_writer = h->stream_writer;
    h->journal.stream_reader = h->stream_reader;
    h->journal.skipping = h->skipping;
    ipc_compiler_barrier();
    h->journal.kind = kind;
    ipc_compiler_barrier();
}

static inline void ipc_queue_end_update(ipc_queue_header *h) {
    ipc_compiler_barrier();
    h->journal.kind = 0;
    ipc_compiler_barrier();
}

/// Restores the fields saved before an update that a killed process left half done:
/// the repair of a state lock taken over from a dead holder.
void ipc_queue_roll_back(ipc_queue_header *h);

// MARK: - Placing and publishing frames

/// Where a frame of `size` ring bytes goes, keeping room for an ABORT frame after it,
/// with the wrap padding before it: 1, or 0 when it does not fit now. Back to the front,
/// where the pages are warm, as soon as the frame fits there and not before the hot
/// zone's end.
static inline int ipc_queue_placement(const ipc_queue_header *h, uint64_t size, uint64_t *offset, uint64_t *padding) {
    uint64_t cap = h->capacity, need = size + IPC_QUEUE_FRAME_HEADER;
    *padding = 0;
    *offset = 0;
    if (h->used == 0) return need <= cap;
    uint64_t head = h->head, tail = h->tail;
    if (tail > head) {
        if (tail + need > IPC_QUEUE_HOT_ZONE && need <= head) { *padding = cap - tail; return 1; }
        *offset = tail;
        return need <= cap - tail;
    }
    *offset = tail;
    return need <= head - tail;
}

/// A place for a frame of `size` ring bytes that ends within the hot zone: 1, or 0.
int ipc_queue_hot_placement(const ipc_queue_header *h, uint64_t size, uint64_t *offset, uint64_t *padding);

/// Writes a frame's header at `offset` of the ring (not yet visible).
static inline void ipc_queue_write_frame_header(ipc_queue_header *h, uint64_t offset, uint32_t length, uint16_t flags, uint64_t id) {
    unsigned char *at = ipc_queue_ring(h) + offset;
    uint16_t zero = 0;
    memcpy(at, &length, 4);
    memcpy(at + 4, &flags, 2);
    memcpy(at + 6, &zero, 2);
    memcpy(at + 8, &id, 8);
}

/// Makes a written frame of `size` ring bytes at `offset` visible, journaled (the bytes
/// first, then the update that shows them). The ring may have emptied since the place
/// was chosen (a streamed frame is written outside the lock): the frame then starts it.
/// `pid` becomes the stream's writer at the first frame of a streamed item.
static inline void ipc_queue_commit(ipc_queue_header *h, uint64_t size, uint16_t flags, uint64_t offset, uint64_t padding,
                                    uint32_t pid) {
    int empty = h->used == 0;
    if (empty) padding = 0;
    if (padding >= IPC_QUEUE_FRAME_HEADER) ipc_queue_write_frame_header(h, h->capacity - padding, 0, IPC_FRAME_WRAP, 0);
    ipc_queue_begin_update(h, IPC_JOURNAL_PUT);
    if (empty) h->head = offset;
    h->tail = offset + size;
    h->used += padding + size;
    if (flags & IPC_FRAME_FIRST) {
        h->items += 1;
        h->unfinished += 1;
        if (!(flags & IPC_FRAME_LAST)) h->stream_writer = pid;
    } else if (flags & IPC_FRAME_LAST) {
        h->stream_writer = 0;
    }
    ipc_queue_end_update(h);
    if (h->tail > h->high_water) h->high_water = h->tail;
}

/// Puts an item of one frame, its payload given in two pieces: 1 when it is in; 0 when
/// the queue is full or the ring has no room now (the caller waits); -1 when another
/// producer's streamed item is going in (it holds put_lock until its item is whole).
static inline int ipc_queue_put_single(ipc_queue_header *h, const void *a, size_t alen, const void *b, size_t blen, uint64_t id,
                                       uint32_t pid) {
    uint32_t writer = h->stream_writer;
    if (writer != 0 && writer != pid) return -1;
    if (h->maxsize != 0 && h->items >= h->maxsize) return 0;
    uint64_t n = alen + blen, size = ipc_queue_frame_size(n), offset, padding;
    if (!ipc_queue_placement(h, size, &offset, &padding)) return 0;
    ipc_queue_write_frame_header(h, offset, (uint32_t)n, IPC_FRAME_FIRST | IPC_FRAME_LAST, id);
    unsigned char *payload = ipc_queue_ring(h) + offset + IPC_QUEUE_FRAME_HEADER;
    if (alen > 0) memcpy(payload, a, alen);
    if (blen > 0) memcpy(payload + alen, b, blen);
    ipc_queue_commit(h, size, IPC_FRAME_FIRST | IPC_FRAME_LAST, offset, padding, pid);
    return 1;
}

/// Closes the current streamed item with an ABORT frame (there is always room), and
/// wakes every reader.
void ipc_queue_append_abort(ipc_queue_header *h, int event_fd);

/// The repair of put_lock taken over from `dead` (the state lock held): when it died in
/// the middle of a streamed item, the item is closed with an ABORT frame; its frame being
/// copied outside the lock was never published.
void ipc_queue_repair_put_lock(ipc_queue_header *h, uint32_t dead, int event_fd);

/// The repair of get_lock taken over from `dead` (the state lock held): when it died in
/// the middle of a streamed item, the rest of that item is skipped.
void ipc_queue_repair_get_lock(ipc_queue_header *h, uint32_t dead);

// MARK: - Taking frames

/// Moves `head` past wrap padding (giving back the pages it covered).
void ipc_queue_skip_padding(ipc_queue_header *h);

/// Consumes the frame at `head`, journaled, and gives back the pages it leaves behind:
/// `item_taken` counts an item out; `stream_reader` and `skipping`, when not negative,
/// are stored; `task_dropped` marks a joinable queue's item done (it was lost).
void ipc_queue_consume_frame(ipc_queue_header *h, int item_taken, int64_t stream_reader, int64_t skipping, int task_dropped,
                             int joinable);

/// Takes the item at the head when it is one whole frame of at most `cap` bytes and no
/// streamed item is being taken: its payload is copied to `out`, 1 is returned with its
/// length and id. 0 when the queue is empty or the item is not that simple (the caller
/// takes the slow way).
int ipc_queue_take_single(ipc_queue_header *h, void *out, size_t cap, uint32_t *length, uint64_t *id, uint32_t pid, int joinable);

// MARK: - Joinable queues

/// What `ipc_queue_task_done` did.
enum { IPC_TASK_NONE_UNFINISHED = 0, IPC_TASK_DONE = 1, IPC_TASK_DONE_WAKE_JOINERS = 2 };
/// Marks one item done, under the state lock: IPC_TASK_NONE_UNFINISHED when no item is
/// unfinished (a misuse), IPC_TASK_DONE_WAKE_JOINERS when it was the last and a joiner
/// sleeps (the caller calls `ipc_queue_wake_joiners` once the lock is given back). One
/// store: a holder killed here leaves nothing half done.
static inline int ipc_queue_task_done(ipc_queue_header *h) {
    if (h->unfinished == 0) return IPC_TASK_NONE_UNFINISHED;
    h->unfinished -= 1;
    return h->unfinished == 0 && h->joiners_waiting > 0 ? IPC_TASK_DONE_WAKE_JOINERS : IPC_TASK_DONE;
}

// MARK: - Waking (the state lock need not be held)

/// Wakes one reader (or all) asleep on `data_seq`, and `ipc.wait`'s eventfd when some
/// process selects on the queue.
void ipc_queue_wake_readers(ipc_queue_header *h, int event_fd, int all);
/// Wakes a writer asleep on `space_seq`.
void ipc_queue_wake_writers(ipc_queue_header *h);
/// Wakes every joiner asleep on `join_seq` (the last unfinished item was marked done).
void ipc_queue_wake_joiners(ipc_queue_header *h);

#endif
