/* test_msg_format.c -- unit tests for msg_format.c: lines and framed modes,
 * every framed error, limits, EOF handling and encoder round trips. */

#include "msg_format.h"
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVS 256
#define MAX_DATA 4096

typedef struct {
    msg_event_type type;
    int binary;
    size_t len;
    unsigned char data[MAX_DATA];
    const char *reason;
} mev;

typedef struct {
    mev ev[MAX_EVS];
    int n;
    int bad;            /* contract violation seen by the driver */
} mrun;

static uint32_t rng = 1;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void record(mrun *out, msg_event_type t, const msg_event *ev)
{
    mev *m;
    if (out->n >= MAX_EVS) {
        out->bad = 1;
        return;
    }
    m = &out->ev[out->n++];
    m->type = t;
    m->binary = ev->binary;
    m->len = ev->len;
    m->reason = ev->reason;
    if (t == MSG_EV_MESSAGE) {
        if (!ev->data || ev->len > MAX_DATA) {
            out->bad = 1;
        }
        else if (ev->len) {
            memcpy(m->data, ev->data, ev->len);
        }
    }
    if (t == MSG_EV_ERROR && (!ev->reason || !ev->reason[0])) {
        out->bad = 1;
    }
}

/* chunking: 0 whole, 1 byte at a time, >1 random chunks. finish: call
 * msg_reader_finish at the end. */
static void drive(int mode, size_t max, const void *data, size_t len,
                  unsigned chunking, int finish, mrun *out)
{
    const unsigned char *buf = data;
    msg_reader *r = msg_reader_create(mode, max);
    size_t pos = 0;
    int done = 0;
    msg_event ev;
    msg_event_type t;

    out->n = 0;
    out->bad = 0;
    if (chunking > 1) {
        rng = chunking;
    }
    while (!done && pos < len) {
        size_t chunk = len - pos, off = 0;
        if (chunking == 1) {
            chunk = 1;
        }
        else if (chunking > 1) {
            size_t c = 1 + (size_t)(rnd() % 23);
            if (c < chunk) {
                chunk = c;
            }
        }
        for (;;) {
            size_t used = 999999;
            t = msg_reader_feed(r, buf + pos + off, chunk - off, &used, &ev);
            if (used > chunk - off) {
                out->bad = 1;
                done = 1;
                break;
            }
            off += used;
            if (t == MSG_EV_NEED_MORE) {
                if (off != chunk) out->bad = 1;
                break;
            }
            record(out, t, &ev);
            if (t == MSG_EV_ERROR) {
                /* Finished: further feeds repeat the error, consume nothing. */
                t = msg_reader_feed(r, buf, len, &used, &ev);
                if (t != MSG_EV_ERROR || used != 0 || !ev.reason) out->bad = 1;
                done = 1;
                break;
            }
            if (off == chunk) {
                break;
            }
        }
        pos += chunk;
    }
    if (finish) {
        t = msg_reader_finish(r, &ev);
        if (t != MSG_EV_NEED_MORE) {
            if (!(done && t == MSG_EV_ERROR)) {
                record(out, t, &ev);
            }
        }
        if (t == MSG_EV_MESSAGE) {
            /* Once delivered, nothing is left. */
            if (msg_reader_finish(r, &ev) != MSG_EV_NEED_MORE) out->bad = 1;
        }
    }
    msg_reader_destroy(r);
}

static int runs_equal(const mrun *a, const mrun *b)
{
    int i;
    if (a->n != b->n || a->bad || b->bad) return 0;
    for (i = 0; i < a->n; i++) {
        const mev *x = &a->ev[i], *y = &b->ev[i];
        if (x->type != y->type || x->binary != y->binary) return 0;
        if (x->type == MSG_EV_MESSAGE
            && (x->len != y->len || memcmp(x->data, y->data, x->len) != 0)) return 0;
        if (x->type == MSG_EV_ERROR && strcmp(x->reason, y->reason) != 0) return 0;
    }
    return 1;
}

/* Whole, byte-at-a-time and random chunks agree; result of whole in out. */
static int drive_all(int mode, size_t max, const void *data, size_t len,
                     int finish, mrun *out)
{
    static mrun other;
    unsigned seeds[] = { 1, 3, 17, 4242 };
    size_t i;
    int ok = 1;

    drive(mode, max, data, len, 0, finish, out);
    if (out->bad) return 0;
    for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        drive(mode, max, data, len, seeds[i], finish, &other);
        if (!runs_equal(out, &other)) ok = 0;
    }
    return ok;
}

static int is_msg(const mrun *r, int i, const char *text, int binary)
{
    size_t l = strlen(text);
    return i < r->n && r->ev[i].type == MSG_EV_MESSAGE && r->ev[i].len == l
        && memcmp(r->ev[i].data, text, l) == 0 && r->ev[i].binary == binary;
}

static int is_err(const mrun *r, const char *reason_part)
{
    return r->n >= 1 && r->ev[r->n - 1].type == MSG_EV_ERROR
        && strstr(r->ev[r->n - 1].reason, reason_part) != NULL;
}

static mrun R;

static void test_lines(void)
{
    static char big[5000];

    CHECK(drive_all(MSG_LINES, 100, "hello\nworld\n", 12, 1, &R));
    CHECK(R.n == 2 && is_msg(&R, 0, "hello", 0) && is_msg(&R, 1, "world", 0));
    /* CRLF: one "\r" dropped. */
    CHECK(drive_all(MSG_LINES, 100, "a\r\nb\r\r\n\r\n", 9, 1, &R));
    CHECK(R.n == 3 && is_msg(&R, 0, "a", 0) && is_msg(&R, 1, "b\r", 0)
          && is_msg(&R, 2, "", 0));
    /* "\r" inside a line is kept. */
    CHECK(drive_all(MSG_LINES, 100, "x\ry\n", 4, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "x\ry", 0));
    /* Empty lines are empty messages. */
    CHECK(drive_all(MSG_LINES, 100, "\n\n\n", 3, 1, &R));
    CHECK(R.n == 3 && is_msg(&R, 0, "", 0) && is_msg(&R, 2, "", 0));
    /* Last line without "\n" at EOF. */
    CHECK(drive_all(MSG_LINES, 100, "one\ntwo", 7, 1, &R));
    CHECK(R.n == 2 && is_msg(&R, 0, "one", 0) && is_msg(&R, 1, "two", 0));
    CHECK(drive_all(MSG_LINES, 100, "one\ntwo", 7, 0, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "one", 0));
    CHECK(drive_all(MSG_LINES, 100, "tail\r", 5, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "tail", 0));
    /* Nothing pending at EOF. */
    CHECK(drive_all(MSG_LINES, 100, "done\n", 5, 1, &R));
    CHECK(R.n == 1);
    CHECK(drive_all(MSG_LINES, 100, "", 0, 1, &R));
    CHECK(R.n == 0);
    /* Binary-looking bytes pass through; NUL included. */
    CHECK(drive_all(MSG_LINES, 100, "a\0b\xff\n", 5, 1, &R));
    CHECK(R.n == 1 && R.ev[0].len == 4 && memcmp(R.ev[0].data, "a\0b\xff", 4) == 0
          && R.ev[0].binary == 0);

    /* Limits: exactly max is fine, also with "\r"; max + 1 is an error. */
    CHECK(drive_all(MSG_LINES, 5, "12345\n", 6, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "12345", 0));
    CHECK(drive_all(MSG_LINES, 5, "12345\r\n", 7, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "12345", 0));
    CHECK(drive_all(MSG_LINES, 5, "123456\n", 7, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "line longer than WebSessionMaxMessage"));
    CHECK(drive_all(MSG_LINES, 5, "12345\r\r\n", 8, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "line longer"));
    CHECK(drive_all(MSG_LINES, 5, "12345\rx", 7, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "line longer"));
    CHECK(drive_all(MSG_LINES, 5, "ok\n1234567", 10, 1, &R));
    CHECK(R.n == 2 && is_msg(&R, 0, "ok", 0) && is_err(&R, "line longer"));
    /* Fail fast: the error comes before any newline arrives. */
    CHECK(drive_all(MSG_LINES, 5, "123456", 6, 0, &R));
    CHECK(R.n == 1 && is_err(&R, "line longer"));
    /* At EOF too. */
    CHECK(drive_all(MSG_LINES, 5, "12345", 5, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "12345", 0));
    CHECK(drive_all(MSG_LINES, 5, "12345\r", 6, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "12345", 0));
    /* max 0: only empty lines. */
    CHECK(drive_all(MSG_LINES, 0, "\n\r\nx\n", 5, 1, &R));
    CHECK(R.n == 3 && is_msg(&R, 0, "", 0) && is_msg(&R, 1, "", 0) && is_err(&R, "line"));
    /* A long line across many chunks. */
    memset(big, 'L', 4000);
    big[4000] = '\n';
    CHECK(drive_all(MSG_LINES, 4000, big, 4001, 1, &R));
    CHECK(R.n == 1 && R.ev[0].type == MSG_EV_MESSAGE && R.ev[0].len == 4000);
    CHECK(drive_all(MSG_LINES, 3999, big, 4001, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "line longer"));
    /* Huge limit does not overflow. */
    CHECK(drive_all(MSG_LINES, (size_t)-1, "big\n", 4, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "big", 0));
}

static void test_framed(void)
{
    CHECK(drive_all(MSG_FRAMED, 100, "T 5\nhello\nB 3\n\x00\xff\n\n", 18, 1, &R));
    CHECK(R.n == 2 && is_msg(&R, 0, "hello", 0));
    CHECK(R.ev[1].type == MSG_EV_MESSAGE && R.ev[1].binary == 1 && R.ev[1].len == 3
          && memcmp(R.ev[1].data, "\x00\xff\n", 3) == 0);
    /* Empty payload. */
    CHECK(drive_all(MSG_FRAMED, 100, "T 0\n\nB 0\n\n", 10, 1, &R));
    CHECK(R.n == 2 && is_msg(&R, 0, "", 0) && is_msg(&R, 1, "", 1));
    /* Payload may hold newlines and "T 1\n" look-alikes. */
    CHECK(drive_all(MSG_FRAMED, 100, "T 6\nT 1\nx\n\n", 11, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "T 1\nx\n", 0));
    /* Exactly max. */
    CHECK(drive_all(MSG_FRAMED, 5, "B 5\nabcde\n", 10, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "abcde", 1));
    CHECK(drive_all(MSG_FRAMED, 0, "B 0\n\n", 5, 1, &R));
    CHECK(R.n == 1 && is_msg(&R, 0, "", 1));

    /* Every error. */
    CHECK(drive_all(MSG_FRAMED, 100, "X 1\na\n", 6, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "framed record: bad type byte"));
    CHECK(drive_all(MSG_FRAMED, 100, "t 1\na\n", 6, 1, &R));
    CHECK(is_err(&R, "bad type byte"));
    CHECK(drive_all(MSG_FRAMED, 100, "\nT 1\na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad type byte"));
    CHECK(drive_all(MSG_FRAMED, 100, "T1\na\n", 5, 1, &R));
    CHECK(is_err(&R, "no space after the type"));
    CHECK(drive_all(MSG_FRAMED, 100, "T  1\na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad character in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T\t1\na\n", 6, 1, &R));
    CHECK(is_err(&R, "no space"));
    CHECK(drive_all(MSG_FRAMED, 100, "T \na\n", 5, 1, &R));
    CHECK(is_err(&R, "empty length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T +1\na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad character in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T -1\na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad character in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 1 \na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad character in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 1\r\na\n", 7, 1, &R));
    CHECK(is_err(&R, "bad character in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 0x1\na\n", 8, 1, &R));
    CHECK(is_err(&R, "leading zero") || is_err(&R, "bad character"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 01\na\n", 7, 1, &R));
    CHECK(is_err(&R, "framed record: leading zero in the length"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 00\n\n", 6, 1, &R));
    CHECK(is_err(&R, "leading zero"));
    CHECK(drive_all(MSG_FRAMED, 5, "T 6\nabcdef\n", 11, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "framed record: length over WebSessionMaxMessage"));
    CHECK(drive_all(MSG_FRAMED, 9, "T 10\n", 5, 1, &R));
    CHECK(is_err(&R, "length over"));
    CHECK(drive_all(MSG_FRAMED, 0, "T 1\na\n", 6, 1, &R));
    CHECK(is_err(&R, "length over"));
    /* Immediately: the payload never arrives, the header alone fails. */
    CHECK(drive_all(MSG_FRAMED, 100, "B 101", 5, 0, &R));
    CHECK(R.n == 1 && is_err(&R, "length over"));
    CHECK(drive_all(MSG_FRAMED, 100, "B 1000000000000000000000000000000", 33, 0, &R));
    CHECK(R.n == 1 && is_err(&R, "length over"));
    CHECK(drive_all(MSG_FRAMED, (size_t)-1, "B 99999999999999999999\n", 23, 0, &R));
    CHECK(R.n == 1 && is_err(&R, "length over"));
    CHECK(drive_all(MSG_FRAMED, (size_t)-1, "B 184467440737095516150\n", 24, 0, &R));
    CHECK(R.n == 1 && is_err(&R, "length over"));
    /* Trailer. */
    CHECK(drive_all(MSG_FRAMED, 100, "T 1\nab\n", 7, 1, &R));
    CHECK(R.n == 1 && is_err(&R, "framed record: payload not followed by a newline"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 1\na\r\n", 7, 1, &R));
    CHECK(is_err(&R, "not followed by a newline"));
    CHECK(drive_all(MSG_FRAMED, 100, "T 1\naT 1\na\n", 11, 1, &R));
    CHECK(is_err(&R, "not followed"));
    /* Good records then a bad one. */
    CHECK(drive_all(MSG_FRAMED, 100, "T 1\na\nT 1\nb\nZ", 13, 1, &R));
    CHECK(R.n == 3 && is_msg(&R, 0, "a", 0) && is_msg(&R, 1, "b", 0)
          && is_err(&R, "bad type"));
    /* Truncated at EOF, at every point of a record. */
    {
        static const char rec[] = "B 4\nwxyz\n";
        size_t i;
        int all = 1;
        for (i = 1; i < sizeof(rec) - 1; i++) {
            if (!drive_all(MSG_FRAMED, 100, rec, i, 1, &R)) all = 0;
            if (R.n != 1 || !is_err(&R, "framed record: truncated at end of output"))
                all = 0;
        }
        CHECK(all);
        CHECK(drive_all(MSG_FRAMED, 100, rec, sizeof(rec) - 1, 1, &R));
        CHECK(R.n == 1 && is_msg(&R, 0, "wxyz", 1));
    }
    /* Finish repeats an earlier error. */
    {
        msg_reader *r = msg_reader_create(MSG_FRAMED, 10);
        msg_event ev;
        size_t used;
        CHECK(msg_reader_feed(r, (const unsigned char *)"Q", 1, &used, &ev) == MSG_EV_ERROR);
        CHECK(used == 1 && ev.reason != NULL);
        CHECK(msg_reader_finish(r, &ev) == MSG_EV_ERROR && ev.reason != NULL);
        CHECK(msg_reader_feed(r, (const unsigned char *)"T 0\n\n", 5, &used, &ev)
              == MSG_EV_ERROR && used == 0);
        msg_reader_destroy(r);
    }
    /* Bad modes. */
    CHECK(msg_reader_create(2, 10) == NULL);
    CHECK(msg_reader_create(-1, 10) == NULL);
    msg_reader_destroy(NULL);
}

static void test_encode(void)
{
    char h[MSG_MAX_HEADER];
    static unsigned char stream[200000];
    static unsigned char payloads[50][3000];
    static size_t plen[50];
    static int pbin[50];
    size_t n = 0, i, k;
    int all = 1;

    CHECK(msg_encode_header(MSG_LINES, 0, 5, h) == 0 && h[0] == '\0');
    CHECK(msg_encode_header(MSG_LINES, 1, 5, h) == 0 && h[0] == '\0');
    CHECK(msg_encode_header(MSG_FRAMED, 0, 5, h) == 4 && strcmp(h, "T 5\n") == 0);
    CHECK(msg_encode_header(MSG_FRAMED, 1, 0, h) == 4 && strcmp(h, "B 0\n") == 0);
    CHECK(msg_encode_header(MSG_FRAMED, 1, 1234567, h) == 10 && strcmp(h, "B 1234567\n") == 0);
    CHECK(msg_encode_header(MSG_FRAMED, 0, (size_t)-1, h) == strlen(h));
    CHECK(strlen(h) <= MSG_MAX_HEADER - 1 && h[0] == 'T' && h[strlen(h) - 1] == '\n');
    CHECK(strcmp(MSG_TRAILER, "\n") == 0);

    /* Round trip: encoder + reader, random binary payloads (cat echoes). */
    rng = 99;
    for (i = 0; i < 50; i++) {
        size_t hl;
        plen[i] = rnd() % (i % 7 == 0 ? 3000 : 40);
        pbin[i] = (int)(rnd() & 1);
        for (k = 0; k < plen[i]; k++) {
            payloads[i][k] = (unsigned char)rnd();
        }
        hl = msg_encode_header(MSG_FRAMED, pbin[i], plen[i], h);
        memcpy(stream + n, h, hl);
        n += hl;
        memcpy(stream + n, payloads[i], plen[i]);
        n += plen[i];
        memcpy(stream + n, MSG_TRAILER, 1);
        n += 1;
    }
    CHECK(drive_all(MSG_FRAMED, 3000, stream, n, 1, &R));
    CHECK(R.n == 50);
    for (i = 0; i < 50 && (int)i < R.n; i++) {
        if (R.ev[i].type != MSG_EV_MESSAGE || R.ev[i].len != plen[i]
            || R.ev[i].binary != pbin[i]
            || memcmp(R.ev[i].data, payloads[i], plen[i]) != 0) all = 0;
    }
    CHECK(all);
    /* Byte at a time and with a smaller limit: the first big record fails. */
    drive(MSG_FRAMED, 3000, stream, n, 1, 1, &R);
    CHECK(R.n == 50 && !R.bad);
    drive(MSG_FRAMED, 100, stream, n, 1, 1, &R);
    CHECK(R.n >= 1 && is_err(&R, "length over"));

    /* Lines round trip. */
    n = 0;
    for (i = 0; i < 50; i++) {
        size_t hl = msg_encode_header(MSG_LINES, 0, 3, h);
        memcpy(stream + n, h, hl);
        n += hl;
        stream[n++] = (unsigned char)('a' + i % 26);
        stream[n++] = 'x';
        stream[n++] = 'y';
        memcpy(stream + n, MSG_TRAILER, 1);
        n += 1;
    }
    CHECK(drive_all(MSG_LINES, 3, stream, n, 1, &R));
    CHECK(R.n == 50 && is_msg(&R, 0, "axy", 0) && is_msg(&R, 49, "xxy", 0));
}

/* Event data stays valid until the next call, and the next call reuses it. */
static void test_lifetime(void)
{
    msg_reader *r = msg_reader_create(MSG_LINES, 100);
    msg_event ev;
    size_t used;
    const unsigned char in[] = "first\nsecond\n";

    CHECK(msg_reader_feed(r, in, 13, &used, &ev) == MSG_EV_MESSAGE && used == 6);
    CHECK(ev.len == 5 && memcmp(ev.data, "first", 5) == 0);
    CHECK(msg_reader_feed(r, in + 6, 7, &used, &ev) == MSG_EV_MESSAGE && used == 7);
    CHECK(ev.len == 6 && memcmp(ev.data, "second", 6) == 0);
    CHECK(msg_reader_feed(r, in, 0, &used, &ev) == MSG_EV_NEED_MORE && used == 0);
    CHECK(msg_reader_feed(r, NULL, 0, &used, &ev) == MSG_EV_NEED_MORE && used == 0);
    CHECK(msg_reader_finish(r, &ev) == MSG_EV_NEED_MORE);
    msg_reader_destroy(r);

    r = msg_reader_create(MSG_FRAMED, 100);
    CHECK(msg_reader_feed(r, NULL, 0, &used, &ev) == MSG_EV_NEED_MORE && used == 0);
    CHECK(msg_reader_finish(r, &ev) == MSG_EV_NEED_MORE);
    msg_reader_destroy(r);
}

int main(void)
{
    test_lines();
    test_framed();
    test_encode();
    test_lifetime();
    return UNIT_DONE("test_msg_format");
}
