// The layouts of the IPC objects that live in shared memory (mmap MAP_SHARED, made before
// the processes that use them are forked). C structs, so that every process, and the C
// code that reads them, agrees on every offset.
#ifndef IPCPLAY_IPC_LAYOUTS_H
#define IPCPLAY_IPC_LAYOUTS_H

#include "ipc_system.h"

#define IPC_NAME_CAP 48

/// A queue: a byte ring of frames in the memory that follows this header (at
/// IPC_QUEUE_HEADER_SPACE from its start). Its protocol is ipc_queue.h's, which
/// MessageQueue.swift and the C fast paths (ipc_fast.c) both call.
#define IPC_QUEUE_HEADER_SPACE 4096
/// A frame: u32 payload length, u16 flags, u16 zero, u64 message id, then the payload,
/// padded to 8 bytes.
#define IPC_QUEUE_FRAME_HEADER 16
/// Ring bytes below this offset are never given back to the kernel (they are hot).
#define IPC_QUEUE_HOT_ZONE (4 << 20)
enum {
    IPC_FRAME_FIRST = 1,  // the first frame of an item
    IPC_FRAME_LAST = 2,   // its last (an item of one frame has both)
    IPC_FRAME_WRAP = 4,   // padding to the ring's end: the next frame is at offset 0
    IPC_FRAME_ABORT = 8,  // the item's producer died: drop what came of it
};
/// What the journal saved the fields for.
enum { IPC_JOURNAL_PUT = 1, IPC_JOURNAL_GET = 2 };

typedef struct ipc_queue_journal {
    uint32_t kind;  // 0: nothing in flight; otherwise the saved fields are restored
    uint32_t stream_writer, stream_reader, skipping;
    uint64_t head, tail, used, items, unfinished;
} ipc_queue_journal;

typedef struct ipc_queue_header {
    uint64_t magic;
    ipc_robust_lock state_lock;  // protects every field below
    ipc_robust_lock put_lock;    // held by a producer for a whole streamed item
    ipc_robust_lock get_lock;    // held by a consumer for a whole streamed item
    uint64_t capacity;           // bytes of ring after the header
    uint64_t max_frame;          // payload bytes of the largest frame
    uint64_t head, tail, used;   // ring positions; used counts wrap padding too
    uint64_t items;              // items put and not yet taken (their first frame)
    uint64_t maxsize;            // item limit, 0 = none
    uint64_t unfinished;         // joinable: items put and not yet marked done
    uint64_t high_water;         // highest ring offset written since the last trim
    uint32_t stream_writer;      // pid of the producer in the middle of a streamed item
    uint32_t stream_reader;      // pid of the consumer in the middle of a streamed item
    uint32_t skipping;           // a consumer died half way: drop frames to the item's end
    uint32_t data_seq;           // futex: bumped when an item arrives
    uint32_t space_seq;          // futex: bumped when room is made
    uint32_t join_seq;           // futex: bumped when unfinished reaches 0
    uint32_t readers_waiting, writers_waiting, joiners_waiting, selectors;
    // Hints for streamed items, not journaled (a stale value costs time, never items):
    uint32_t last_reader;        // pid of the last consumer that took an item
    uint32_t spill;              // a producer stopped waiting for room in the warm front
    uint64_t copying;            // a producer writes a frame outside the lock: do not trim all
    ipc_queue_journal journal;
    char name[IPC_NAME_CAP];
} ipc_queue_header;

/// A semaphore: a futex word and a count of sleepers.
typedef struct ipc_semaphore_header {
    uint64_t magic;
    uint32_t value;    // futex word
    uint32_t waiters;  // sleepers (a hint: a killed sleeper leaves it high, costing a wake)
    int64_t bound;     // bounded semaphore's maximum, or -1
    char name[IPC_NAME_CAP];
} ipc_semaphore_header;

/// A lock or rlock.
typedef struct ipc_lock_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint32_t recursive;
    uint32_t pad;
    char name[IPC_NAME_CAP];
} ipc_lock_header;

/// A readers-writer lock (`ipc.rwlock`). A writer holds `gate` for its whole write; a
/// reader holds it only while it takes a slot of `readers`, which it then holds for its
/// whole read (its re-entries counted in the slot's depth). A writer, holding `gate`,
/// waits for each slot a reader holds: once it has passed them all, no reader is left,
/// and no new one can come. Every lock is a robust mutex: a reader or a writer that dies
/// (even by SIGKILL) leaves nothing held.
#define IPC_RWLOCK_READERS 32
typedef struct ipc_rwlock_header {
    uint64_t magic;
    ipc_robust_lock gate;
    ipc_robust_lock readers[IPC_RWLOCK_READERS];
    char name[IPC_NAME_CAP];
} ipc_rwlock_header;

/// An event. Every set() bumps `generation`, so that a waiter that saw the generation
/// when its wait began returns true for a set() made during it, even when a clear()
/// followed before the waiter ran again (as in Python). Bit 0 of `generation` says that
/// someone sleeps on it: set() makes the futex call only then, and clears the bit. A
/// waiter killed asleep leaves the bit, which costs the next set() one futex call and
/// nothing else (there is no count to leave wrong).
typedef struct ipc_event_header {
    uint64_t magic;
    uint32_t flag;        // 0 clear, 1 set
    uint32_t generation;  // futex word: set() count << 1 | sleepers
    char name[IPC_NAME_CAP];
} ipc_event_header;

/// A condition's waiters, each parked on its own word so that notify(n) wakes exactly n.
#define IPC_CONDITION_SLOTS 256
typedef struct ipc_condition_slot {
    uint64_t ticket;  // arrival order; 0 = free
    uint32_t pid;
    uint32_t word;    // futex: 0 waiting, 1 notified
} ipc_condition_slot;

typedef struct ipc_condition_header {
    uint64_t magic;
    uint64_t next_ticket;
    char name[IPC_NAME_CAP];
    ipc_condition_slot slots[IPC_CONDITION_SLOTS];
} ipc_condition_header;

/// A barrier.
typedef struct ipc_barrier_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint32_t parties;
    uint32_t count;       // arrived in this generation
    uint32_t generation;  // futex: bumped when the barrier trips, breaks or resets
    uint32_t broken;      // 1 until reset
    uint32_t broken_generation;  // the generation whose waiters were released broken
    uint32_t pad;
    char name[IPC_NAME_CAP];
} ipc_barrier_header;

/// A shared value or array: its lock, then `count` elements of `item_size` bytes. A single
/// value lives in `inline_value`, in the lock's own cache line, so that a locked update
/// moves one line between processes, not two.
typedef struct ipc_scalar_header {
    uint64_t magic;
    ipc_robust_lock lock;
    uint64_t inline_value;
    uint64_t count;
    uint32_t item_size;
    uint8_t typecode;
    uint8_t pad[3];
    char name[IPC_NAME_CAP];
} ipc_scalar_header;

/// Bytes read from a pipe and not yet consumed: receivers read ahead into it, under the
/// direction's receive lock, so that one read(2) serves many messages, and so that a
/// receiver that exits leaves what it read for the next one.
///
/// The unconsumed bytes are half[active][start..<end]; `state` packs (active, start, end)
/// in one word, so that every change (consume, read more, compact into the other half
/// and switch) is a single store, and a receiver killed at any instant leaves a consistent
/// inbox. Frames carry sequence numbers (reserved under the send lock, so they rise in
/// pipe order): a receiver killed between its read(2) and the store that records it
/// leaves fresh frames past `end`, which the next receiver tells from stale bytes by
/// their numbers, above `consumed` and above every frame before `end`.
///
/// A small message can also skip the kernel: while a receiver takes frames in C
/// (`receiver`: from its first frame taken in C until it waits in Swift, closes its end
/// or ends; it spins for the next frame without the receive lock), nothing sleeps in
/// poll(2) on the pipe (`pollers`), and every byte written to the pipe has been read
/// into the inbox (`piped` == `drained`), a sender appends its frame to the inbox itself,
/// under the receive lock (ipc_channel.c, `ipc_channel_put_direct`). The frame is then in pipe order
/// (after everything read, before anything written later), and looks as if it had been
/// read. Any death under the receive lock turns this off for good (`direct_off`): the
/// counters may be wrong after it, and the pipe is always right. So, in effect, does a
/// sender killed between counting a write in `piped` and making it, and a poller killed
/// in poll(2) (the counts stay high). A receiver killed while `receiver` names it leaves
/// it set (a normal end clears it): until another receiver takes a frame in C, senders
/// may still put up to an inbox's worth of frames directly where no reader is left,
/// before the pipe tells them "closed". A sender killed in the instant between putting a
/// frame in and moving it to the pipe for a poller (put_direct) leaves that poller asleep
/// until the next message or its timeout; the frame itself is received.
#define IPC_INBOX_HALF 16384
typedef struct ipc_channel_inbox {
    // Written by senders and watched by spinning receivers, so on a cache line of their
    // own: a send then does not take the receivers' line (nor the bytes) from their CPU.
    // (Explicit padding, not _Alignas: Swift does not import over-aligned fields.)
    // The number of the last frame written: receivers spin until it changes. Stored, not
    // incremented, so that a send need not read the line back from a spinning receiver.
    uint32_t written;
    uint8_t watched_line_pad[60];
    // Read and written by senders only, so not on the line receivers watch (a sender
    // would take that line from them twice per frame, not once).
    uint32_t sequence;  // the last sequence number a sender reserved
    uint32_t pad0;
    uint64_t piped;     // bytes written to the pipe, counted before each write
    uint8_t senders_line_pad[48];
    // Written by receivers (and by a sender that puts a frame in directly).
    uint64_t state;     // active << 63 | start << 32 | end
    uint32_t consumed;  // the sequence number of the last frame consumed
    uint32_t receiver;  // pid of the receiver taking frames in C (see above)
    uint64_t drained;   // bytes read from the pipe into the inbox
    uint32_t pollers;   // processes in poll(2) on the pipe (c:poll, ipc.wait): no direct put
    uint32_t direct_off;  // a receive lock was taken over from a dead process
    // Swift does not import `bytes` (too large an array); Connection.inboxBytesOffset
    // says where it starts.
    uint8_t bytes[2 * IPC_INBOX_HALF];
    uint8_t tail_pad[32];
} ipc_channel_inbox;
_Static_assert(offsetof(ipc_channel_inbox, state) == 128, "the watched line, then the senders' line");
_Static_assert(offsetof(ipc_channel_inbox, bytes) == 160, "Connection.inboxBytesOffset");
_Static_assert(sizeof(ipc_channel_inbox) % 64 == 0, "inboxes on line boundaries");

/// A pipe frame's header (ipc_channel.h's protocol, which Connection.swift and the C fast
/// paths in ipc_fast.c both call): the check,
/// length and flags, the payload's CRC-32C, the sequence number, the trace id.
#define IPC_PIPE_FRAME_HEADER 24
enum {
    IPC_PIPE_FIRST = 1 << 24,
    IPC_PIPE_LAST = 2 << 24,
    IPC_PIPE_RAW = 4 << 24,  // bytes from send_bytes, not an encoded value
    IPC_PIPE_LANE = 8 << 24,  // the payload is in the lane: u32 slot, u32 length
    IPC_PIPE_LENGTH_MASK = 0x00FFFFFF,
};

/// A large message (more than IPC_LANE_MIN bytes) travels through its direction's lane:
/// slots of shared memory after the channel's header. The sender copies a part of the
/// message into a slot and writes a small frame (IPC_PIPE_LANE) that names it; the
/// receiver copies it out before it records the frame consumed. A slot is written again
/// only once the frame that last named it is consumed (the inbox's `consumed`); a sender
/// waits for that a moment (a futex on `consumed`, `waiting` set), then sends the next
/// part through the pipe in ordinary frames (it never waits for a slot for ever). A sender that takes the send lock
/// over from a dead one sets `fenced`: the dead one may have named a slot in a frame it
/// never wrote, so the next lane message first writes an empty frame and reuses no slot
/// until that frame is consumed.
#define IPC_LANE_MIN (256 << 10)
#define IPC_LANE_SLOTS 4
#define IPC_LANE_SLOT (1 << 20)
typedef struct ipc_channel_lane {
    uint32_t slot_sequence[IPC_LANE_SLOTS];  // the frame that last named each slot
    uint32_t next;     // the slot the next part goes to (senders, under the send lock)
    uint32_t waiting;  // a sender sleeps on the inbox's `consumed` (a futex) for a slot
    uint32_t fenced;   // the send lock was taken over from a dead sender
    uint8_t pad[36];
} ipc_channel_lane;
_Static_assert(sizeof(ipc_channel_lane) == 64, "one line per lane");

/// A frame header's check: a mix of the pipe's salt and the header's other fields, so
/// that a receiver finds the next frame boundary after bytes lost with a dead receiver.
static inline uint32_t ipc_pipe_frame_check(uint64_t salt, uint32_t word, uint32_t crc, uint32_t sequence, uint64_t id) {
    uint64_t x = salt ^ ((uint64_t)word << 32 | crc) ^ id ^ ((uint64_t)sequence * 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdull;
    x = (x ^ (x >> 33)) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(x ^ (x >> 33));
}

/// A robust lock on a cache line of its own.
typedef struct ipc_line_lock {
    ipc_robust_lock lock;
    uint8_t pad[64 - sizeof(ipc_robust_lock)];
} ipc_line_lock;

/// A Connection pair's shared state: per direction a send lock, a receive lock, an inbox
/// and a lane (whose slots follow, at IPC_LANE_OFFSET).
///
/// The first line is written once, when the pair is made, and read at every frame (the
/// salt); each lock has a line of its own, written at every send or receive by its side
/// only. (A send lock beside the salt cost every frame two cache misses: the sender's
/// write of its lock took the line from the receiver, whose read of the salt took it
/// back.)
typedef struct ipc_channel_header {
    uint64_t magic;
    uint64_t salt;  // frame check seed
    char name[IPC_NAME_CAP];
    ipc_line_lock send_lock[2];
    ipc_line_lock recv_lock[2];
    ipc_channel_inbox inbox[2];
    ipc_channel_lane lane[2];
} ipc_channel_header;
_Static_assert(sizeof(ipc_line_lock) == 64, "a lock per line");
_Static_assert(offsetof(ipc_channel_header, send_lock) == 64, "the read-mostly line, then the locks");
/// C's view of the layout, for a test that Swift's agrees (Swift does not import an
/// inbox's bytes, and reads the rest by name).
static inline size_t ipc_channel_header_size(void) { return sizeof(ipc_channel_header); }
static inline size_t ipc_channel_lane_offset(void) { return offsetof(ipc_channel_header, lane); }
static inline size_t ipc_channel_inbox_offset(void) { return offsetof(ipc_channel_header, inbox); }
static inline size_t ipc_channel_recv_lock_offset(void) { return offsetof(ipc_channel_header, recv_lock); }
static inline size_t ipc_inbox_size(void) { return sizeof(ipc_channel_inbox); }
static inline size_t ipc_inbox_consumed_offset(void) { return offsetof(ipc_channel_inbox, consumed); }
static inline size_t ipc_inbox_sequence_offset(void) { return offsetof(ipc_channel_inbox, sequence); }
static inline size_t ipc_inbox_drained_offset(void) { return offsetof(ipc_channel_inbox, drained); }
static inline size_t ipc_inbox_bytes_offset(void) { return offsetof(ipc_channel_inbox, bytes); }
/// Where the lanes' slots start in the channel's region (direction 0's, then 1's).
#define IPC_LANE_OFFSET ((sizeof(ipc_channel_header) + 4095) & ~(size_t)4095)
_Static_assert(offsetof(ipc_channel_header, inbox) % 64 == 0, "inboxes on line boundaries");

#endif
