// A queue's protocol: see ipc_queue.h.
#define _GNU_SOURCE
#include "ipc_queue.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

/// Ring bytes are given back to the kernel in blocks of this size, beyond the hot zone.
#define TRIM_BLOCK (1 << 20)

void ipc_queue_roll_back(ipc_queue_header *h) {
    if (h->journal.kind == 0) return;
    h->head = h->journal.head;
    h->tail = h->journal.tail;
    h->used = h->journal.used;
    h->items = h->journal.items;
    h->unfinished = h->journal.unfinished;
    h->stream_writer = h->journal.stream_writer;
    h->stream_reader = h->journal.stream_reader;
    h->skipping = h->journal.skipping;
    ipc_compiler_barrier();
    h->journal.kind = 0;
}

int ipc_queue_hot_placement(const ipc_queue_header *h, uint64_t size, uint64_t *offset, uint64_t *padding) {
    uint64_t cap = h->capacity, hot = cap < IPC_QUEUE_HOT_ZONE ? cap : IPC_QUEUE_HOT_ZONE;
    uint64_t need = size + IPC_QUEUE_FRAME_HEADER;
    *offset = 0;
    *padding = 0;
    if (h->used == 0) return need <= hot;
    uint64_t head = h->head, tail = h->tail;
    if (tail > head) {
        if (tail + need <= hot) { *offset = tail; return 1; }
        *padding = cap - tail;
        return need <= (head < hot ? head : hot);
    }
    *offset = tail;
    return need <= head - tail && tail + need <= hot;
}

void ipc_queue_append_abort(ipc_queue_header *h, int event_fd) {
    uint64_t cap = h->capacity, offset = h->tail, padding = 0;
    if (h->used == 0) {
        offset = 0;
    } else if (h->tail > h->head && cap - offset < IPC_QUEUE_FRAME_HEADER) {
        padding = cap - offset;
        offset = 0;
    }
    ipc_queue_write_frame_header(h, offset, 0, IPC_FRAME_ABORT, 0);
    ipc_queue_begin_update(h, IPC_JOURNAL_PUT);
    if (h->used == 0) h->head = 0;
    h->tail = offset + IPC_QUEUE_FRAME_HEADER;
    h->used += padding + IPC_QUEUE_FRAME_HEADER;
    h->stream_writer = 0;
    ipc_queue_end_update(h);
    ipc_queue_wake_readers(h, event_fd, 1);
}

/// True when a process with this pid exists (EPERM counts as alive).
static int process_exists(uint32_t pid) {
    if (pid == 0 || pid > INT32_MAX) return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/// Gives back the pages of the ring consumed between `start` and `end`, beyond the hot zone.
static void trim(ipc_queue_header *h, uint64_t start, uint64_t end) {
    uint64_t lo = start > IPC_QUEUE_HOT_ZONE ? start : IPC_QUEUE_HOT_ZONE;
    uint64_t lo_block = (lo + TRIM_BLOCK - 1) / TRIM_BLOCK * TRIM_BLOCK, hi_block = end / TRIM_BLOCK * TRIM_BLOCK;
    if (hi_block > lo_block) madvise(ipc_queue_ring(h) + lo_block, hi_block - lo_block, MADV_REMOVE);
}

/// Gives back every page written beyond the hot zone (the ring is empty), unless a
/// producer writes a frame there outside the lock (unless it died doing so: then nobody
/// writes there, and the next producer closes its item).
static void trim_all(ipc_queue_header *h) {
    if (h->copying != 0) {
        if (h->stream_writer != 0 && process_exists(h->stream_writer)) return;
        h->copying = 0;
    }
    uint64_t high = h->high_water;
    if (high > IPC_QUEUE_HOT_ZONE) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t top = (high + page - 1) / page * page;
        if (top > h->capacity) top = h->capacity;
        madvise(ipc_queue_ring(h) + IPC_QUEUE_HOT_ZONE, top - IPC_QUEUE_HOT_ZONE, MADV_REMOVE);
        h->high_water = IPC_QUEUE_HOT_ZONE;
    }
}

void ipc_queue_repair_put_lock(ipc_queue_header *h, uint32_t dead, int event_fd) {
    uint32_t writer = h->stream_writer;
    if (writer != 0 && (writer == dead || !process_exists(writer))) ipc_queue_append_abort(h, event_fd);
    h->copying = 0;
}

void ipc_queue_repair_get_lock(ipc_queue_header *h, uint32_t dead) {
    uint32_t reader = h->stream_reader;
    if (reader != 0 && (reader == dead || !process_exists(reader))) {
        ipc_queue_begin_update(h, IPC_JOURNAL_GET);
        h->stream_reader = 0;
        h->skipping = 1;
        ipc_queue_end_update(h);
    }
}

void ipc_queue_skip_padding(ipc_queue_header *h) {
    uint64_t cap = h->capacity, head = h->head;
    uint16_t flags = 0;
    if (cap - head >= IPC_QUEUE_FRAME_HEADER) {
        memcpy(&flags, ipc_queue_ring(h) + head + 4, 2);
        if (!(flags & IPC_FRAME_WRAP)) return;
    }
    ipc_queue_begin_update(h, IPC_JOURNAL_GET);
    h->head = 0;
    h->used -= cap - head;
    ipc_queue_end_update(h);
    trim(h, head, cap);
}

void ipc_queue_consume_frame(ipc_queue_header *h, int item_taken, int64_t stream_reader, int64_t skipping, int task_dropped,
                             int joinable) {
    uint64_t head = h->head;
    uint32_t length;
    memcpy(&length, ipc_queue_ring(h) + head, 4);
    uint64_t size = ipc_queue_frame_size(length);
    ipc_queue_begin_update(h, IPC_JOURNAL_GET);
    h->used -= size;
    if (h->used == 0) {
        h->head = 0;
        h->tail = 0;
    } else {
        h->head = head + size;
    }
    if (item_taken) h->items -= 1;
    if (stream_reader >= 0) h->stream_reader = (uint32_t)stream_reader;
    if (skipping >= 0) h->skipping = (uint32_t)skipping;
    if (task_dropped && joinable && h->unfinished > 0) h->unfinished -= 1;
    ipc_queue_end_update(h);
    if (h->used == 0) {
        trim_all(h);
    } else {
        trim(h, head, head + size);
    }
}

int ipc_queue_take_single(ipc_queue_header *h, void *out, size_t cap, uint32_t *length, uint64_t *id, uint32_t pid, int joinable) {
    if (h->used == 0 || h->stream_reader != 0 || h->skipping != 0) return 0;
    ipc_queue_skip_padding(h);
    if (h->used == 0) return 0;
    const unsigned char *at = ipc_queue_ring(h) + h->head;
    uint16_t flags;
    memcpy(length, at, 4);
    memcpy(&flags, at + 4, 2);
    if ((flags & (IPC_FRAME_FIRST | IPC_FRAME_LAST | IPC_FRAME_ABORT)) != (IPC_FRAME_FIRST | IPC_FRAME_LAST) || *length > cap) return 0;
    memcpy(id, at + 8, 8);
    memcpy(out, at + IPC_QUEUE_FRAME_HEADER, *length);
    ipc_queue_consume_frame(h, 1, -1, -1, 0, joinable);
    if (h->last_reader != pid) h->last_reader = pid;  // a read, mostly: the line stays shared
    return 1;
}

void ipc_queue_wake_readers(ipc_queue_header *h, int event_fd, int all) {
    if (ipc_load32(&h->readers_waiting) > 0) {
        ipc_add32(&h->data_seq, 1);
        ipc_futex_wake(&h->data_seq, all ? INT32_MAX : 1);
    }
    if (ipc_load32(&h->selectors) > 0 && event_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(event_fd, &one, sizeof one);
        (void)w;  // a full counter already wakes the waiter
    }
}

void ipc_queue_wake_writers(ipc_queue_header *h) {
    if (ipc_load32(&h->writers_waiting) > 0) {
        ipc_add32(&h->space_seq, 1);
        ipc_futex_wake(&h->space_seq, 1);
    }
}

void ipc_queue_wake_joiners(ipc_queue_header *h) {
    ipc_add32(&h->join_seq, 1);
    ipc_futex_wake(&h->join_seq, INT32_MAX);
}
