// A pipe's protocol in shared memory, in one place: frame headers and their numbers, the
// counted writes, the receive inbox (its one-word state, filling it, taking a frame out,
// recovering what a dead receiver read ahead), the direct put into a receiver's inbox,
// and the fence after a dead sender. The Swift core (Connection.swift: waits, messages
// of several frames, the lane, errors) and the Lua fast paths (ipc_fast.c: a message of
// one small frame, with no Swift frame) both call these.
#ifndef IPCPLAY_IPC_CHANNEL_H
#define IPCPLAY_IPC_CHANNEL_H

#include "ipc_layouts.h"
#include <limits.h>

/// A frame's payload at most: a frame is written with one write(2) of at most PIPE_BUF.
#define IPC_PIPE_FRAME_MAX (PIPE_BUF - IPC_PIPE_FRAME_HEADER)

static inline ipc_channel_inbox *ipc_channel_inbox_of(ipc_channel_header *h, int direction) { return &h->inbox[direction]; }

// MARK: - The inbox's state

/// The active half, and where its unconsumed bytes start and end; one word in memory.
typedef struct ipc_inbox_state { uint64_t active, start, end; } ipc_inbox_state;

static inline ipc_inbox_state ipc_inbox_load(ipc_channel_inbox *box) {
    uint64_t w = ipc_load64(&box->state);
    return (ipc_inbox_state){w >> 63, (w >> 32) & 0x7FFFFFFF, w & 0xFFFFFFFF};
}

static inline void ipc_inbox_store(ipc_channel_inbox *box, ipc_inbox_state st) {
    ipc_store64(&box->state, st.active << 63 | st.start << 32 | st.end);
}

static inline unsigned char *ipc_inbox_half(ipc_channel_inbox *box, uint64_t which) { return box->bytes + which * IPC_INBOX_HALF; }

/// The unconsumed bytes.
static inline unsigned char *ipc_inbox_front(ipc_channel_inbox *box, ipc_inbox_state st) {
    return ipc_inbox_half(box, st.active) + st.start;
}

/// True when unconsumed bytes wait in the inbox.
static inline int ipc_inbox_has_bytes(ipc_channel_inbox *box) {
    ipc_inbox_state st = ipc_inbox_load(box);
    return st.end > st.start;
}

// MARK: - Sending

/// Fills in the header of a frame of `length` payload bytes at `payload` (its length and
/// flags in `word`) into `header` (IPC_PIPE_FRAME_HEADER bytes), with the next sequence
/// number, which it returns. The number is reserved (under the send lock) before the
/// frame goes anywhere: a sender killed in between leaves a gap, never two frames with
/// one number.
uint32_t ipc_channel_number_frame(ipc_channel_header *h, int direction, void *header, uint32_t word, const void *payload,
                                  size_t length, uint64_t id);

/// Writes a whole frame, given in two pieces (a header and its payload, or the whole
/// frame and nothing), to the pipe `fd` with one write(2), counted in `piped` first (a
/// sender killed between the two leaves the count high, which only keeps frames off the
/// direct way). The bytes written, or -errno: -EAGAIN when the pipe is full, -EPIPE when
/// it has no reader.
ssize_t ipc_channel_write_frame(ipc_channel_header *h, int direction, int fd, const void *a, size_t alen, const void *b, size_t blen);

/// Puts a whole frame of `length` bytes (the send lock held) straight into the inbox of
/// `direction`, for a receiver that takes frames in C (see ipc_channel_inbox), when that
/// keeps the pipe's order; `written` then says so. 1 when it is there (or was moved to
/// the pipe for a poller); 0 when the frame must go through the pipe.
/// A receive lock taken over from a dead receiver on the way is repaired
/// (`ipc_inbox_recover`), and the dead one's pid left in `*dead_holder` (else 0) for
/// the caller's warning.
int ipc_channel_put_direct(ipc_channel_header *h, int direction, int fd, const void *frame, size_t length, uint32_t sequence,
                           uint32_t me, uint32_t *dead_holder);

/// The repair of a send lock taken over from a dead sender: it may have named a slot of
/// the lane in a frame it never wrote (see ipc_channel_lane).
static inline void ipc_channel_fence(ipc_channel_header *h, int direction) { ipc_store32(&h->lane[direction].fenced, 1); }

// MARK: - Receiving (the receive lock held)

/// What `ipc_inbox_fill` found.
enum { IPC_FILL_CLOSED = 0, IPC_FILL_READY = 1, IPC_FILL_EMPTY = -1 };

/// Reads from the pipe `fd` into the inbox until it holds `minimum` unconsumed bytes:
/// IPC_FILL_READY; IPC_FILL_EMPTY when the pipe has nothing for now (`*seen`: the
/// senders' `written` before the look, which changes with the next frame); IPC_FILL_CLOSED
/// at the end of the stream or when the read fails. Makes room first when the active half
/// is short of it: what is left moves to the front of the other half, then one store
/// switches to it. `trust_counts`: an empty inbox when every byte written has been read
/// (`piped` == `drained`) is taken as an empty pipe, with no read(2) to learn it (the end
/// of the stream is then learnt from a later read).
int ipc_inbox_fill(ipc_channel_inbox *box, int fd, uint64_t minimum, int trust_counts, uint32_t *seen);

/// The frame header at the inbox's front (at least IPC_PIPE_FRAME_HEADER bytes there):
/// 1 when it is one (its check holds, its length fits a frame), with its fields; 0 when
/// the bytes there are not a frame boundary.
int ipc_inbox_frame(ipc_channel_header *h, ipc_channel_inbox *box, uint32_t *word, uint32_t *crc, uint32_t *sequence, uint64_t *id);

/// Consumes the frame of `length` payload bytes numbered `sequence` at the front: its
/// number first (a sender waiting for a lane slot is woken), then the state in one
/// store, so a receiver killed here loses nothing it had not taken.
void ipc_inbox_consume_frame(ipc_channel_header *h, int direction, uint32_t sequence, uint32_t length);

/// Consumes `n` bytes at the front (bytes that are not a frame: one store).
static inline void ipc_inbox_skip(ipc_channel_inbox *box, uint64_t n) {
    ipc_inbox_state st = ipc_inbox_load(box);
    st.start += n;
    ipc_inbox_store(box, st);
}

/// The repair of a receive lock taken over from a dead receiver: if it died between its
/// read(2) and the store that records it, the bytes it read lie past `end`; the fresh
/// frames among them are taken back into the inbox, and direct puts stop for good.
void ipc_inbox_recover(ipc_channel_header *h, int direction);

#endif
