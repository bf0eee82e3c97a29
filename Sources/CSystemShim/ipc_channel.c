// A pipe's protocol: see ipc_channel.h.
#include "ipc_channel.h"

#include <string.h>

uint32_t ipc_channel_number_frame(ipc_channel_header *h, int direction, void *header, uint32_t word, const void *payload,
                                  size_t length, uint64_t id) {
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    uint32_t crc = ipc_crc32c(0, payload, length);
    uint32_t sequence = ++box->sequence;
    uint32_t check = ipc_pipe_frame_check(h->salt, word, crc, sequence, id);
    unsigned char *at = header;
    memcpy(at, &check, 4);
    memcpy(at + 4, &word, 4);
    memcpy(at + 8, &crc, 4);
    memcpy(at + 12, &sequence, 4);
    memcpy(at + 16, &id, 8);
    return sequence;
}

ssize_t ipc_channel_write_frame(ipc_channel_header *h, int direction, int fd, const void *a, size_t alen, const void *b, size_t blen) {
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    uint64_t length = alen + blen;
    ipc_add64(&box->piped, length);
    ssize_t w = IPC_RETRY_EINTR(ipc_write2(fd, a, alen, b, blen));
    if (w < 0) __atomic_sub_fetch(&box->piped, length, __ATOMIC_SEQ_CST);
    return w;
}

/// Pauses a sender spends on the receive lock for a direct put: a receiver holds it for
/// the time it takes a frame out; one that holds it longer has the frame go to the pipe.
#define DIRECT_LOCK_SPINS 16

int ipc_channel_put_direct(ipc_channel_header *h, int direction, int fd, const void *frame, size_t length, uint32_t sequence,
                           uint32_t me, uint32_t *dead_holder) {
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    *dead_holder = 0;
    if (ipc_load32(&box->receiver) == 0 || ipc_load32(&box->pollers) != 0 || ipc_load32(&box->direct_off) != 0) return 0;
    ipc_robust_lock *lk = &h->recv_lock[direction].lock;
    uint32_t dead = 0;
    switch (ipc_robust_lock_take(lk, DIRECT_LOCK_SPINS, 1, me, &dead)) {
    case IPC_LOCK_BUSY: return 0;
    case IPC_LOCK_TAKEN_OVER:
        ipc_inbox_recover(h, direction);  // and direct puts are off from now on
        ipc_robust_lock_consistent(lk);
        *dead_holder = dead;
        break;
    default: break;
    }
    ipc_inbox_state st = ipc_inbox_load(box);
    // In pipe order only when the pipe holds nothing (every byte written was read).
    int fits = ipc_load32(&box->direct_off) == 0 && ipc_load64(&box->piped) == ipc_load64(&box->drained);
    if (fits && st.start == st.end) st.start = st.end = 0;  // empty: from the front
    if (fits && IPC_INBOX_HALF - st.end >= length) {
        memcpy(ipc_inbox_half(box, st.active) + st.end, frame, length);
        st.end += length;
        ipc_inbox_store(box, st);
        // Stored, then looked: a poller stores `pollers`, then looks at the inbox. So a
        // poller we do not see now will see the frame.
        if (ipc_load32(&box->pollers) == 0) {
            ipc_robust_lock_give(lk);
            ipc_store32_release(&box->written, sequence);
            return 1;
        }
        // One came after our first look, and may sleep in poll(2), which only the pipe
        // ends: the frame goes to the pipe, and only then is it taken back from the inbox
        // (no one took it, we hold the lock). A poller may have seen it in the inbox; in
        // this order it is always in one of the two, so its "true" has a message behind it
        // for the recv that follows (taken back first, a poll(0) just after could find
        // neither). (An empty frame rung after it instead would make a poll say true with
        // no message to receive.)
        int written = ipc_channel_write_frame(h, direction, fd, frame, length, NULL, 0) == (ssize_t)length;
        st.end -= length;
        ipc_inbox_store(box, st);
        ipc_robust_lock_give(lk);
        if (written) ipc_store32_release(&box->written, sequence);
        return written;  // if not, the caller's own write finds out why
    }
    ipc_robust_lock_give(lk);
    return 0;
}

int ipc_inbox_fill(ipc_channel_inbox *box, int fd, uint64_t minimum, int trust_counts, uint32_t *seen) {
    for (;;) {
        ipc_inbox_state st = ipc_inbox_load(box);
        uint64_t count = st.end - st.start;
        if (count >= minimum) return IPC_FILL_READY;
        if (IPC_INBOX_HALF - st.end < minimum - count || (st.start == st.end && st.start > 0)) {
            // Make room: what is left goes to the front of the other half, then one store
            // switches to it (the copy's source stays intact until then).
            uint64_t other = 1 - st.active;
            if (count > 0) memcpy(ipc_inbox_half(box, other), ipc_inbox_front(box, st), count);
            st = (ipc_inbox_state){other, 0, count};
            ipc_inbox_store(box, st);
        }
        // Sampled before the read: a frame written after this point changes it.
        *seen = ipc_load32(&box->written);
        // (A write counted after this look is stored in `written` after `seen`.)
        if (trust_counts && st.end == st.start && ipc_load64(&box->piped) == ipc_load64(&box->drained)) return IPC_FILL_EMPTY;
        ssize_t r = IPC_RETRY_EINTR(ipc_read_nowait(fd, ipc_inbox_half(box, st.active) + st.end, IPC_INBOX_HALF - st.end));
        if (r > 0) {
            st.end += (uint64_t)r;
            ipc_inbox_store(box, st);
            ipc_add64(&box->drained, (uint64_t)r);
            continue;
        }
        return r == -EAGAIN ? IPC_FILL_EMPTY : IPC_FILL_CLOSED;
    }
}

/// The frame header at `p` when it is one (its check holds, its length fits a frame).
static int header_at(const unsigned char *p, uint64_t salt, uint32_t *word, uint32_t *crc, uint32_t *sequence, uint64_t *id) {
    uint32_t check;
    memcpy(&check, p, 4);
    memcpy(word, p + 4, 4);
    memcpy(crc, p + 8, 4);
    memcpy(sequence, p + 12, 4);
    memcpy(id, p + 16, 8);
    return check == ipc_pipe_frame_check(salt, *word, *crc, *sequence, *id) && (*word & IPC_PIPE_LENGTH_MASK) <= IPC_PIPE_FRAME_MAX;
}

int ipc_inbox_frame(ipc_channel_header *h, ipc_channel_inbox *box, uint32_t *word, uint32_t *crc, uint32_t *sequence, uint64_t *id) {
    return header_at(ipc_inbox_front(box, ipc_inbox_load(box)), h->salt, word, crc, sequence, id);
}

void ipc_inbox_consume_frame(ipc_channel_header *h, int direction, uint32_t sequence, uint32_t length) {
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    ipc_store32(&box->consumed, sequence);
    if (ipc_load32(&h->lane[direction].waiting) != 0) ipc_futex_wake(&box->consumed, INT32_MAX);
    ipc_inbox_skip(box, IPC_PIPE_FRAME_HEADER + length);
}

void ipc_inbox_recover(ipc_channel_header *h, int direction) {
    ipc_channel_inbox *box = ipc_channel_inbox_of(h, direction);
    uint64_t salt = h->salt;
    // The dead one may have read without counting it, or put a frame in directly
    // without finishing: the counters that order direct puts are not to be trusted.
    ipc_store32(&box->direct_off, 1);
    ipc_inbox_state st = ipc_inbox_load(box);
    const unsigned char *base = ipc_inbox_half(box, st.active);
    const uint64_t cap = IPC_INBOX_HALF, header = IPC_PIPE_FRAME_HEADER;
    uint32_t word, crc, sequence, length;
    uint64_t id;
    // Walk the inbox as a receiver would, to the highest number read so far and to
    // where the first frame that is not whole before `end` starts.
    uint32_t last = box->consumed;
    uint64_t at = st.start;
    while (at < st.end) {
        if (cap - at < header || !header_at(base + at, salt, &word, &crc, &sequence, &id)) { at++; continue; }
        length = word & IPC_PIPE_LENGTH_MASK;
        if (at + header + length > st.end) break;
        if ((int32_t)(sequence - last) > 0) last = sequence;
        at += header + length;
    }
    // From there on, fresh frames (each one checked whole).
    uint64_t fresh = at;
    while (cap - fresh >= header && header_at(base + fresh, salt, &word, &crc, &sequence, &id) && (int32_t)(sequence - last) > 0) {
        length = word & IPC_PIPE_LENGTH_MASK;
        if (fresh + header + length > cap) {
            fresh = cap;  // cut by the end of the half: the rest follows in the pipe
            break;
        }
        if (ipc_crc32c(0, base + fresh + header, length) != crc) break;
        last = sequence;
        fresh += header + length;
    }
    // Fewer bytes left than a header: perhaps the start of one, cut by the end of the
    // half. Keeping them is safe either way: stale bytes are skipped as garbage.
    if (cap - (fresh > st.end ? fresh : st.end) < header) fresh = cap;
    if (fresh > st.end) {
        st.end = fresh;
        ipc_inbox_store(box, st);
    }
}
