/* fuzz_frame.c -- libFuzzer target for the frame parser (ws_codec.c) and the
 * script output reader (msg_format.c).
 *
 * Input: byte 0 picks max_message, the chunking pattern and require_mask;
 * the rest is fed in chunks.  Every run is compared with a whole-buffer run
 * (the events must not depend on how the bytes arrive) and the events are
 * checked against the contracts.
 */

#include "ws_codec.h"
#include "msg_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 4096

typedef struct {
    int type;
    int binary;
    unsigned code;
    size_t len;
    uint64_t hash;
} fev;

typedef struct {
    fev ev[MAX_EVENTS];
    size_t n;
} fevs;

static void must(int cond)
{
    if (!cond) {
        abort();
    }
}

static uint64_t hash(const unsigned char *d, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    size_t i;
    for (i = 0; i < n; i++) {
        h = (h ^ d[i]) * UINT64_C(1099511628211);
    }
    return h;
}

/* Chunk size for the next feed: pattern 0 whole, 1 single bytes, 2 a fixed
 * cycle, 3 sizes taken from the data itself. */
static size_t chunk_size(unsigned pattern, size_t step, const uint8_t *data,
                         size_t size, size_t left)
{
    static const size_t cycle[] = { 1, 2, 3, 5, 8, 13, 64, 7, 4096 };
    size_t c;

    switch (pattern) {
    case 0:
        c = left;
        break;
    case 1:
        c = 1;
        break;
    case 2:
        c = cycle[step % (sizeof(cycle) / sizeof(cycle[0]))];
        break;
    default:
        c = size ? 1 + data[step % size] % 32 : 1;
        break;
    }
    return c < left ? c : left;
}

static void add(fevs *out, int type, int binary, unsigned code,
                const unsigned char *d, size_t len)
{
    if (out->n < MAX_EVENTS) {
        fev *e = &out->ev[out->n++];
        e->type = type;
        e->binary = binary;
        e->code = code;
        e->len = len;
        e->hash = len ? hash(d, len) : 0;
    }
}

static int same(const fevs *a, const fevs *b)
{
    size_t i;

    if (a->n != b->n) {
        return 0;
    }
    for (i = 0; i < a->n; i++) {
        const fev *x = &a->ev[i], *y = &b->ev[i];
        if (x->type != y->type || x->binary != y->binary || x->code != y->code
            || x->len != y->len || x->hash != y->hash) {
            return 0;
        }
    }
    return 1;
}

static void run_parser(size_t max, int rm, unsigned pattern,
                       const uint8_t *data, size_t size, fevs *out)
{
    ws_parser *p = ws_parser_create(max, rm);
    size_t pos = 0, step = 0;
    int done = 0;

    out->n = 0;
    must(p != NULL);
    while (!done && pos < size) {
        size_t c = chunk_size(pattern, step++, data, size, size - pos);
        size_t off = 0;
        while (!done) {
            ws_event ev;
            size_t used = (size_t)-1;
            ws_event_type t = ws_parser_feed(p, data + pos + off, c - off, &used, &ev);

            must(used <= c - off);
            must(ev.type == t);
            off += used;
            if (t == WS_EV_NEED_MORE) {
                must(off == c);
                break;
            }
            switch (t) {
            case WS_EV_MESSAGE:
                must(ev.len <= max);
                must(ev.len == 0 || ev.data != NULL);
                if (!ev.binary) {
                    must(ws_utf8_valid(ev.data, ev.len));
                }
                break;
            case WS_EV_PING:
            case WS_EV_PONG:
                must(ev.len <= WS_MAX_CONTROL);
                break;
            case WS_EV_CLOSE:
                must(ev.code == WS_CLOSE_NO_STATUS || ws_close_code_valid(ev.code));
                must(ev.len <= WS_MAX_CONTROL - 2);
                must(ws_utf8_valid(ev.data, ev.len));
                done = 1;
                break;
            case WS_EV_ERROR:
                must(ev.code == WS_CLOSE_PROTOCOL || ev.code == WS_CLOSE_INVALID_DATA
                     || ev.code == WS_CLOSE_TOO_BIG || ev.code == WS_CLOSE_INTERNAL);
                must(ev.reason != NULL && ev.reason[0] != '\0');
                done = 1;
                break;
            default:
                must(0);
            }
            add(out, (int)t, ev.binary, ev.code, ev.data, ev.len);
            if (done) {
                /* Finished: consumes nothing, same event type again. */
                ws_event again;
                size_t u2 = 1;
                must(ws_parser_feed(p, data, size, &u2, &again) == t && u2 == 0);
                must(again.code == ev.code);
            }
            if (off == c) {
                break;
            }
        }
        pos += c;
    }
    ws_parser_destroy(p);
}

static void run_reader(int mode, size_t max, unsigned pattern,
                       const uint8_t *data, size_t size, fevs *out)
{
    msg_reader *r = msg_reader_create(mode, max);
    size_t pos = 0, step = 0;
    int done = 0;
    msg_event ev;
    msg_event_type t;

    out->n = 0;
    must(r != NULL);
    while (!done && pos < size) {
        size_t c = chunk_size(pattern, step++, data, size, size - pos);
        size_t off = 0;
        while (!done) {
            size_t used = (size_t)-1;
            t = msg_reader_feed(r, data + pos + off, c - off, &used, &ev);
            must(used <= c - off);
            off += used;
            if (t == MSG_EV_NEED_MORE) {
                must(off == c);
                break;
            }
            if (t == MSG_EV_MESSAGE) {
                must(ev.len <= max && (ev.len == 0 || ev.data != NULL));
                must(mode == MSG_FRAMED || ev.binary == 0);
                if (mode == MSG_LINES) {
                    must(ev.len == 0 || memchr(ev.data, '\n', ev.len) == NULL);
                }
            }
            else {
                must(t == MSG_EV_ERROR && ev.reason && ev.reason[0]);
                done = 1;
            }
            add(out, (int)t, ev.binary, 0, ev.data, ev.len);
            if (off == c) {
                break;
            }
        }
        pos += c;
    }
    t = msg_reader_finish(r, &ev);
    if (done) {
        must(t == MSG_EV_ERROR);
    }
    else if (t != MSG_EV_NEED_MORE) {
        add(out, (int)t, ev.binary, 0, ev.data, ev.len);
        if (t == MSG_EV_MESSAGE) {
            must(mode == MSG_LINES && ev.len <= max);
        }
    }
    msg_reader_destroy(r);
}

/* Re-encodes framed messages and reads them back. */
static void framed_round_trip(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size + MSG_MAX_HEADER + 1);
    char hdr[MSG_MAX_HEADER];
    msg_reader *r = msg_reader_create(MSG_FRAMED, size);
    size_t hl, used;
    msg_event ev;
    int binary = size && (data[0] & 1);

    must(buf && r);
    hl = msg_encode_header(MSG_FRAMED, binary, size, hdr);
    must(hl > 0 && hl < MSG_MAX_HEADER);
    memcpy(buf, hdr, hl);
    if (size) {
        memcpy(buf + hl, data, size);
    }
    buf[hl + size] = '\n';
    must(msg_reader_feed(r, buf, hl + size + 1, &used, &ev) == MSG_EV_MESSAGE);
    must(used == hl + size + 1 && ev.len == size && ev.binary == binary);
    must(size == 0 || memcmp(ev.data, data, size) == 0);
    msg_reader_destroy(r);
    free(buf);
}

/* Builds a close payload from the data as a reason and parses it back. */
static void close_round_trip(const uint8_t *data, size_t size)
{
    char reason[160];
    unsigned char pl[WS_MAX_CONTROL], frame[WS_MAX_HEADER + WS_MAX_CONTROL];
    static const unsigned char mask[4] = { 0xa1, 0xb2, 0xc3, 0xd4 };
    unsigned code = size >= 2 ? ((unsigned)data[0] << 8 | data[1]) % 5200 : 1000;
    size_t n = size < sizeof(reason) - 1 ? size : sizeof(reason) - 1, pn, hn, used;
    ws_parser *p;
    ws_event ev;

    memcpy(reason, data, n);
    reason[n] = '\0';
    pn = ws_close_payload(pl, code, reason);
    must(pn <= WS_MAX_CONTROL);
    must(pn == 0 || (pn >= 2 && ws_utf8_valid(pl + 2, pn - 2)));
    must(pn != 1);
    hn = ws_frame_header(frame, 1, WS_OP_CLOSE, pn, mask);
    memcpy(frame + hn, pl, pn);
    ws_mask(frame + hn, pn, mask, 0);
    p = ws_parser_create(1, 1);
    must(p != NULL);
    must(ws_parser_feed(p, frame, hn + pn, &used, &ev) == WS_EV_CLOSE);
    must(used == hn + pn);
    must(pn == 0 ? ev.code == WS_CLOSE_NO_STATUS : ev.code == code);
    ws_parser_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[8] = { 1, 2, 7, 125, 126, 1000, 65536, 1 << 20 };
    static fevs whole, split;
    unsigned ctl, pattern;
    size_t max;
    int rm;

    if (size < 1) {
        return 0;
    }
    ctl = data[0];
    data++;
    size--;
    max = maxes[ctl & 7];
    pattern = (ctl >> 3) & 3;
    rm = (ctl >> 5) & 1;

    run_parser(max, rm, 0, data, size, &whole);
    run_parser(max, rm, pattern ? pattern : 1, data, size, &split);
    must(same(&whole, &split));

    run_reader(MSG_LINES, max, 0, data, size, &whole);
    run_reader(MSG_LINES, max, pattern ? pattern : 1, data, size, &split);
    must(same(&whole, &split));

    run_reader(MSG_FRAMED, max, 0, data, size, &whole);
    run_reader(MSG_FRAMED, max, pattern ? pattern : 1, data, size, &split);
    must(same(&whole, &split));

    /* UTF-8: incremental over any split equals one shot. */
    {
        size_t cut = size ? data[0] % (size + 1) : 0;
        uint32_t st = ws_utf8_step(WS_UTF8_ACCEPT, data, cut);
        st = ws_utf8_step(st, data + cut, size - cut);
        must((st == WS_UTF8_ACCEPT) == (ws_utf8_valid(data, size) != 0));
    }

    /* Masking twice restores, at any offset. */
    if (size >= 4) {
        unsigned char *copy = malloc(size);
        uint64_t off = data[1 % size];
        must(copy != NULL);
        memcpy(copy, data, size);
        ws_mask(copy + 4, size - 4, data, off);
        ws_mask(copy + 4, size - 4, data, off);
        must(memcmp(copy, data, size) == 0);
        free(copy);
    }

    if (size <= 70000) {
        framed_round_trip(data, size);
    }
    close_round_trip(data, size);
    return 0;
}
