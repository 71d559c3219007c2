/* sendq.c -- ordering, retention and replay of a keeper's outgoing frames. */

#include <string.h>

#include "sendq.h"
#include "ws_codec.h"

/* Total length of the frame whose header starts at p. */
static size_t frame_len(const unsigned char *p)
{
    size_t n = p[1] & 0x7f, mask = (p[1] & 0x80) ? 4 : 0;

    if (n < 126) {
        return 2 + mask + n;
    }
    if (n == 126) {
        return 4 + mask + (((size_t)p[2] << 8) | p[3]);
    }
    n = 0;
    for (int i = 2; i < 10; i++) {
        n = (n << 8) | p[i];
    }
    return 10 + mask + n;
}

void sendq_init(sendq *q, int retain)
{
    memset(q, 0, sizeof(*q));
    q->retain = retain;
}

void sendq_free(sendq *q)
{
    bytebuf_free(&q->dq);
    bytebuf_free(&q->cq);
    memset(q, 0, sizeof(*q));
}

void sendq_data(sendq *q, const unsigned char *hdr, size_t hlen,
                const unsigned char *prefix, size_t plen,
                const unsigned char *payload, size_t len)
{
    if (q->final_len || q->closing_now) {
        return;                 /* nothing follows the final frame */
    }
    bytebuf_append(&q->dq, hdr, hlen);
    bytebuf_append(&q->dq, prefix, plen);
    bytebuf_append(&q->dq, payload, len);
    q->queued++;
}

/* Control frames (payload <= 125 bytes: a 2-byte header) of one kind. */
static int same_kind(const unsigned char *a, const unsigned char *b)
{
    size_t la = a[1] & 0x7F, lb = b[1] & 0x7F;

    if ((a[0] & 0x0F) != (b[0] & 0x0F)) {
        return 0;
    }
    return (a[0] & 0x0F) != WS_OP_TEXT || (la > 0 && lb > 0 && a[2] == b[2]);
}

void sendq_ctl(sendq *q, const unsigned char *frame, size_t len)
{
    /* The frame being written, if any, stays: only whole unwritten ones go. */
    size_t start = q->cur_ctl && q->cur_left ? q->cur_left : 0;
    size_t keep = (frame[0] & 0x0F) == WS_OP_PONG ? SENDQ_PONGS_KEPT : 1;
    size_t at, oldest = 0, count = 0;

    for (at = start; q->cq.off + at < q->cq.len; at += frame_len(q->cq.data + q->cq.off + at)) {
        if (same_kind(q->cq.data + q->cq.off + at, frame) && count++ == 0) {
            oldest = at;
        }
    }
    if (count >= keep) {
        unsigned char *f = q->cq.data + q->cq.off + oldest;
        size_t fl = frame_len(f);

        memmove(f, f + fl, q->cq.len - (q->cq.off + oldest + fl));
        q->cq.len -= fl;
    }
    bytebuf_append(&q->cq, frame, len);
}

void sendq_close_now(sendq *q, const unsigned char *frame, size_t len)
{
    if (q->closing_now) {
        return;
    }
    bytebuf_append(&q->cq, frame, len);
    q->closing_now = 1;
}

void sendq_final(sendq *q, const unsigned char *frame, size_t len)
{
    if (q->final_len) {
        return;
    }
    bytebuf_append(&q->dq, frame, len);
    q->final_len = len;
}

/* Bytes of dq not yet written on this connection. */
static size_t data_unwritten(const sendq *q)
{
    return q->dq.len - q->dq.off - q->wrel;
}

size_t sendq_peek(const sendq *q, const unsigned char **p)
{
    if (q->cur_left) {
        if (q->cur_ctl) {
            *p = q->cq.data + q->cq.off;
        }
        else {
            *p = q->dq.data + q->dq.off + q->wrel;
        }
        return q->cur_left;
    }
    if (q->cq.len > q->cq.off) {
        *p = q->cq.data + q->cq.off;
        return q->cq.len - q->cq.off;
    }
    if (q->held || q->closing_now || data_unwritten(q) == 0) {
        *p = NULL;
        return 0;
    }
    *p = q->dq.data + q->dq.off + q->wrel;
    return data_unwritten(q);
}

void sendq_wrote(sendq *q, size_t n)
{
    while (n > 0) {
        size_t step;

        if (q->cur_left == 0) {
            if (q->cq.len > q->cq.off) {
                q->cur_ctl = 1;
                q->cur_left = frame_len(q->cq.data + q->cq.off);
            }
            else {
                q->cur_ctl = 0;
                q->cur_left = frame_len(q->dq.data + q->dq.off + q->wrel);
            }
        }
        step = q->cur_left < n ? q->cur_left : n;
        q->cur_left -= step;
        n -= step;
        if (q->cur_ctl) {
            bytebuf_consume(&q->cq, step);
            continue;
        }
        q->wrel += step;
        if (q->cur_left) {
            continue;
        }
        /* A data or final frame went out whole. */
        if (q->final_len && q->dq.off + q->wrel == q->dq.len) {
            q->final_written = 1;
        }
        else if (!q->retain) {
            bytebuf_consume(&q->dq, q->wrel);
            q->wrel = 0;
            q->acked++;
            q->sent_max = q->acked;
        }
        else {
            q->wframes++;
            if (q->acked + q->wframes > q->sent_max) {
                q->sent_max = q->acked + q->wframes;
            }
        }
    }
}

/* Walk k data frames from the head: their total length, or (size_t)-1 if
 * fewer than k are queued. */
static size_t head_frames_len(const sendq *q, uint64_t k)
{
    size_t at = 0;

    while (k-- > 0) {
        size_t fl;

        if (q->dq.off + at >= q->dq.len - q->final_len) {
            return (size_t)-1;
        }
        fl = frame_len(q->dq.data + q->dq.off + at);
        at += fl;
    }
    return at;
}

static void drop_head(sendq *q, uint64_t k, size_t bytes)
{
    bytebuf_consume(&q->dq, bytes);
    q->acked += k;
}

int sendq_ack(sendq *q, uint64_t n)
{
    size_t bytes;

    if (n < q->acked || n > q->sent_max) {
        return -1;              /* backwards, or never written */
    }
    bytes = head_frames_len(q, n - q->acked);
    if (bytes == (size_t)-1) {
        return -1;
    }
    if (bytes <= q->wrel) {
        q->wframes -= n - q->acked;
        q->wrel -= bytes;
    }
    else if (q->cur_left && !q->cur_ctl) {
        return -1;              /* covers the frame being written */
    }
    else {
        /* Written whole on an earlier connection: everything this one has
         * written is covered too, and it goes on after the last frame. */
        q->wframes = 0;
        q->wrel = 0;
    }
    drop_head(q, n - q->acked, bytes);
    return 0;
}

int sendq_resume(sendq *q, uint64_t n)
{
    size_t bytes;

    if (n < q->acked || n > q->queued) {
        return -1;
    }
    bytes = head_frames_len(q, n - q->acked);
    if (bytes == (size_t)-1) {
        return -1;
    }
    drop_head(q, n - q->acked, bytes);
    q->wrel = 0;
    q->wframes = 0;
    if (!q->cur_ctl) {
        q->cur_left = 0;
    }
    q->held = 0;
    q->final_written = 0;
    return 0;
}

void sendq_detach(sendq *q)
{
    bytebuf_clear(&q->cq);
    q->cur_left = 0;
    q->cur_ctl = 0;
    q->wrel = 0;
    q->wframes = 0;
    q->final_written = 0;
}

void sendq_hold(sendq *q)
{
    q->held = 1;
}

size_t sendq_pending_bytes(const sendq *q)
{
    return q->dq.len - q->dq.off;
}

int sendq_has_output(const sendq *q)
{
    const unsigned char *p;

    return sendq_peek(q, &p) > 0;
}

int sendq_final_done(const sendq *q)
{
    return q->final_written
           || (q->closing_now && q->cq.len == q->cq.off && q->cur_left == 0);
}
