/* test_sendq.c -- unit tests for the keeper's outgoing frame queue. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sendq.h"
#include "ws_codec.h"
#include "unit.h"

static void add_data(sendq *q, const char *text)
{
    unsigned char hdr[WS_MAX_HEADER];
    size_t len = strlen(text);
    size_t h = ws_frame_header(hdr, 1, WS_OP_TEXT, len + 1, NULL);

    sendq_data(q, hdr, h, (const unsigned char *)"D", 1, (const unsigned char *)text, len);
}

static void add_ctl(sendq *q, const char *text)
{
    unsigned char f[WS_MAX_HEADER + 125];
    size_t len = strlen(text);
    size_t h = ws_frame_header(f, 1, WS_OP_TEXT, len, NULL);

    memcpy(f + h, text, len);
    sendq_ctl(q, f, h + len);
}

static void add_final(sendq *q)
{
    unsigned char f[WS_MAX_HEADER + 125];
    unsigned char pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, 1000, "bye");
    size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

    memcpy(f + h, pl, n);
    sendq_final(q, f, h + n);
}

/* Write everything writable, at most `limit` bytes per step, into out
 * (a wire), and return the payloads of the frames seen, joined by '|'. */
static char *drain(sendq *q, size_t limit, size_t max_total)
{
    static unsigned char wire[1 << 16];
    static char seen[1 << 16];
    size_t wl = 0, total = 0;
    const unsigned char *p;
    size_t n;
    ws_parser *ps = ws_parser_create(1 << 20, 0);

    seen[0] = '\0';
    while ((n = sendq_peek(q, &p)) > 0 && total < max_total) {
        if (n > limit) {
            n = limit;
        }
        if (total + n > max_total) {
            n = max_total - total;
        }
        memcpy(wire + wl, p, n);
        wl += n;
        total += n;
        sendq_wrote(q, n);
    }
    for (size_t off = 0; off < wl;) {
        ws_event ev;
        size_t used = 0;
        ws_event_type t = ws_parser_feed(ps, wire + off, wl - off, &used, &ev);

        off += used;
        if (t == WS_EV_MESSAGE) {
            strncat(seen, (const char *)ev.data, ev.len);
            strcat(seen, "|");
        }
        else if (t == WS_EV_CLOSE) {
            strcat(seen, "CLOSE|");
        }
        else {
            break;
        }
    }
    ws_parser_destroy(ps);
    return seen;
}

/* Write whatever is writable without looking at it; returns the bytes. */
static size_t write_all(sendq *q)
{
    const unsigned char *p;
    size_t n, total = 0;

    while ((n = sendq_peek(q, &p)) > 0) {
        sendq_wrote(q, n);
        total += n;
    }
    return total;
}

static void test_plain(void)
{
    sendq q;

    sendq_init(&q, 0);
    add_data(&q, "a");
    add_data(&q, "b");
    CHECK(!strcmp(drain(&q, 1000, 1000), "Da|Db|"));
    CHECK(sendq_pending_bytes(&q) == 0);
    CHECK(!sendq_has_output(&q));

    /* A frame cut by a lost connection is written whole next time. */
    add_data(&q, "hello");
    CHECK(!strcmp(drain(&q, 1000, 3), ""));
    sendq_detach(&q);
    CHECK(!strcmp(drain(&q, 2, 1000), "Dhello|"));

    /* Control frames jump ahead of data, at a frame boundary only. */
    add_data(&q, "x1");
    add_data(&q, "x2");
    {
        const unsigned char *p;

        CHECK(sendq_peek(&q, &p) == 10);         /* both frames at once */
        sendq_wrote(&q, 2);                      /* inside x1 */
        add_ctl(&q, "P");
        CHECK(sendq_peek(&q, &p) == 3 && !memcmp(p, "Dx1", 3));
        sendq_wrote(&q, 3);
        CHECK(sendq_peek(&q, &p) == 3 && p[1] == 1 && p[2] == 'P');
        sendq_wrote(&q, 3);
        CHECK(sendq_peek(&q, &p) == 5 && !memcmp(p + 2, "Dx2", 3));
        sendq_wrote(&q, 5);
        CHECK(!sendq_has_output(&q));
    }

    /* The final frame follows all data; nothing is queued after it. */
    add_data(&q, "last");
    add_final(&q);
    add_data(&q, "ignored");
    CHECK(!sendq_final_done(&q));
    CHECK(!strcmp(drain(&q, 3, 1000), "Dlast|CLOSE|"));
    CHECK(sendq_final_done(&q));
    sendq_free(&q);
}

static void test_retain(void)
{
    sendq q;

    sendq_init(&q, 1);
    sendq_hold(&q);
    add_ctl(&q, "R0");
    add_data(&q, "1");
    add_data(&q, "2");
    add_data(&q, "3");
    /* Held: only control frames. */
    CHECK(!strcmp(drain(&q, 1000, 1000), "R0|"));
    CHECK(sendq_resume(&q, 0) == 0);
    CHECK(!strcmp(drain(&q, 1000, 1000), "D1|D2|D3|"));
    CHECK(sendq_pending_bytes(&q) > 0);          /* kept until acknowledged */
    CHECK(sendq_ack(&q, 4) == -1);               /* never sent */
    CHECK(sendq_ack(&q, 2) == 0);
    CHECK(sendq_ack(&q, 1) == -1);               /* goes backwards */
    CHECK(q.acked == 2);

    /* Connection lost; the peer says it has 2: frame 3 again, then 4. */
    sendq_detach(&q);
    sendq_hold(&q);
    add_data(&q, "4");
    CHECK(!strcmp(drain(&q, 1000, 1000), ""));
    CHECK(sendq_resume(&q, 1) == -1);            /* frame 2 is gone */
    CHECK(sendq_resume(&q, 5) == -1);            /* more than was queued */
    CHECK(sendq_resume(&q, 2) == 0);
    CHECK(!strcmp(drain(&q, 1, 1000), "D3|D4|"));

    /* The peer may have received more than it acknowledged. */
    sendq_detach(&q);
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 4) == 0);
    CHECK(!strcmp(drain(&q, 1000, 1000), ""));
    CHECK(sendq_pending_bytes(&q) == 0);

    /* Ack of a partly written frame does not count it. */
    add_data(&q, "55555");
    CHECK(!strcmp(drain(&q, 1000, 4), ""));
    CHECK(sendq_ack(&q, 5) == -1);
    CHECK(write_all(&q) == 8 - 4);               /* the rest of "D55555" */
    CHECK(sendq_ack(&q, 5) == 0);

    /* Final after data, resent after a resume. */
    add_data(&q, "6");
    add_final(&q);
    CHECK(!strcmp(drain(&q, 1000, 1000), "D6|CLOSE|"));
    CHECK(sendq_final_done(&q));
    sendq_detach(&q);
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 5) == 0);
    CHECK(!sendq_final_done(&q));
    CHECK(!strcmp(drain(&q, 1000, 1000), "D6|CLOSE|"));
    sendq_free(&q);
}

/* Many frames of varied sizes, random cuts and acks: every frame arrives
 * in order, none twice, across reconnects. */
static void test_random(void)
{
    sendq q;
    unsigned seed = 12345;
    unsigned long next_expected = 1, sent = 0;

    sendq_init(&q, 1);
    for (int round = 0; round < 200; round++) {
        char msg[64];
        const char *s;
        int k = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 20;

        for (int i = 0; i < k; i++) {
            snprintf(msg, sizeof(msg), "%lu", ++sent);
            add_data(&q, msg);
        }
        s = drain(&q, 1 + (seed >> 20) % 7, (seed >> 8) % 200);
        for (const char *t = s; *t; t = strchr(t, '|') + 1) {
            CHECK(t[0] == 'D' && strtoul(t + 1, NULL, 10) == next_expected);
            next_expected++;
        }
        sendq_detach(&q);
        sendq_hold(&q);
        CHECK(sendq_resume(&q, next_expected - 1) == 0);
    }
    {
        const char *s = drain(&q, 1000, 1 << 20);
        for (const char *t = s; *t; t = strchr(t, '|') + 1) {
            CHECK(t[0] == 'D' && strtoul(t + 1, NULL, 10) == next_expected);
            next_expected++;
        }
        CHECK(next_expected == sent + 1);
    }
    sendq_free(&q);
}

static void test_close_now(void)
{
    sendq q;
    unsigned char f[WS_MAX_HEADER + 125], pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, 1002, "bad"), h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

    memcpy(f + h, pl, n);
    /* Held (waiting for the peer's resume point): the close still goes. */
    sendq_init(&q, 1);
    sendq_hold(&q);
    add_data(&q, "held");
    sendq_close_now(&q, f, h + n);
    CHECK(!sendq_final_done(&q));
    CHECK(!strcmp(drain(&q, 1000, 1000), "CLOSE|"));
    CHECK(sendq_final_done(&q));
    add_data(&q, "after");
    CHECK(!sendq_has_output(&q));
    sendq_free(&q);

    /* A data frame under way is finished first; queued data is not sent. */
    sendq_init(&q, 0);
    add_data(&q, "abc");
    add_data(&q, "def");
    {
        const unsigned char *p;

        sendq_peek(&q, &p);
        sendq_wrote(&q, 3);                     /* inside "Dabc" */
        sendq_close_now(&q, f, h + n);
        CHECK(sendq_peek(&q, &p) == 3 && !memcmp(p, "abc", 3));
        sendq_wrote(&q, 3);
        CHECK(sendq_peek(&q, &p) == h + n && p[0] == 0x88);
        sendq_wrote(&q, h + n);
        CHECK(sendq_final_done(&q));
        CHECK(!sendq_has_output(&q));
    }
    sendq_free(&q);
}

/* The HTTP fallback acknowledges in POSTs, which may arrive after the
 * connection that carried the frames is gone or replaced. */
static void test_late_ack(void)
{
    sendq q;

    sendq_init(&q, 1);
    CHECK(sendq_resume(&q, 0) == 0);
    add_data(&q, "1");
    add_data(&q, "2");
    add_data(&q, "3");
    CHECK(!strcmp(drain(&q, 1000, 1000), "D1|D2|D3|"));
    CHECK(q.sent_max == 3);

    /* Lost: the ack of 2 comes while nothing is attached. */
    sendq_detach(&q);
    CHECK(sendq_ack(&q, 2) == 0);
    CHECK(q.acked == 2);
    CHECK(sendq_ack(&q, 4) == -1);               /* never written */

    /* A new connection resumed from 2 rewrites 3; a late ack of 3 then
     * covers what this connection wrote. */
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 2) == 0);
    add_data(&q, "4");
    CHECK(!strcmp(drain(&q, 1000, 1000), "D3|D4|"));
    CHECK(sendq_ack(&q, 3) == 0);
    CHECK(sendq_ack(&q, 4) == 0);
    CHECK(sendq_pending_bytes(&q) == 0);

    /* Frames 5 and 6 written whole on one connection; the next resumes
     * from 4 and has written part of 5 when the ack of 6 arrives: it
     * covers the frame in the middle of being written, so it waits. */
    add_data(&q, "55555");
    add_data(&q, "6");
    CHECK(!strcmp(drain(&q, 1000, 1000), "D55555|D6|"));
    sendq_detach(&q);
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 4) == 0);
    CHECK(!strcmp(drain(&q, 1000, 3), ""));
    CHECK(sendq_ack(&q, 6) == -1);
    CHECK(write_all(&q) > 0);
    CHECK(sendq_ack(&q, 6) == 0);
    CHECK(sendq_pending_bytes(&q) == 0);

    /* Written before, acknowledged while a new connection has written
     * nothing yet: writing goes on after the acknowledged frames. */
    add_data(&q, "7");
    add_data(&q, "8");
    CHECK(!strcmp(drain(&q, 1000, 1000), "D7|D8|"));
    add_data(&q, "9");
    sendq_detach(&q);
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 6) == 0);
    CHECK(sendq_ack(&q, 8) == 0);
    CHECK(!strcmp(drain(&q, 1000, 1000), "D9|"));
    sendq_free(&q);
}

/* An acknowledgement may cover only frames written whole: one beyond
 * sent_max names a frame that is queued but was never written (on this
 * connection or an earlier one), and freeing it would lose it. */
static void test_ack_unwritten(void)
{
    sendq q;
    size_t pending;

    sendq_init(&q, 1);
    CHECK(sendq_resume(&q, 0) == 0);
    add_data(&q, "1");
    add_data(&q, "2");
    CHECK(!strcmp(drain(&q, 1000, 1000), "D1|D2|"));
    add_data(&q, "3");                           /* queued, not written */
    add_data(&q, "4");
    CHECK(q.sent_max == 2);
    pending = sendq_pending_bytes(&q);
    CHECK(sendq_ack(&q, 3) == -1);
    CHECK(sendq_ack(&q, 4) == -1);
    CHECK(q.acked == 0 && sendq_pending_bytes(&q) == pending);
    CHECK(sendq_ack(&q, 2) == 0);
    CHECK(q.acked == 2);
    CHECK(sendq_ack(&q, 3) == -1);               /* still never written */
    CHECK(q.acked == 2);
    /* Nothing was freed: 3 and 4 still go out, in order. */
    CHECK(!strcmp(drain(&q, 1000, 1000), "D3|D4|"));
    CHECK(sendq_ack(&q, 4) == 0);
    CHECK(sendq_pending_bytes(&q) == 0);

    /* Lost while 5 was queued and 6 half written: after the reconnect only
     * what was written whole may be acknowledged. */
    add_data(&q, "5");
    add_data(&q, "666");
    CHECK(!strcmp(drain(&q, 1000, 8), "D5|"));   /* "D5" whole, 2 bytes of "D666" */
    sendq_detach(&q);
    CHECK(sendq_ack(&q, 6) == -1);
    sendq_hold(&q);
    CHECK(sendq_resume(&q, 4) == 0);
    CHECK(sendq_ack(&q, 6) == -1);
    CHECK(sendq_ack(&q, 5) == 0);
    CHECK(!strcmp(drain(&q, 1000, 1000), "D666|"));
    CHECK(sendq_ack(&q, 6) == 0);
    sendq_free(&q);
}

static void add_op(sendq *q, int opcode, const char *text)
{
    unsigned char f[WS_MAX_HEADER + 125];
    size_t len = strlen(text);
    size_t h = ws_frame_header(f, 1, opcode, len, NULL);

    memcpy(f + h, text, len);
    sendq_ctl(q, f, h + len);
}

/* Write everything writable and list the frames: "PONG:x|PING:|Tt|CLOSE|",
 * data frames as their text. */
static char *written(sendq *q)
{
    static char out[1 << 16];
    const unsigned char *p;
    unsigned char wire[1 << 16];
    size_t n, wl = 0, off = 0;

    out[0] = '\0';
    while ((n = sendq_peek(q, &p)) > 0 && wl + n <= sizeof(wire)) {
        memcpy(wire + wl, p, n);
        wl += n;
        sendq_wrote(q, n);
    }
    while (off + 2 <= wl) {
        int op = wire[off] & 0x0F;
        size_t len = wire[off + 1] & 0x7F;

        if (len > 125) {
            strcat(out, "BIG|");
            break;
        }
        strcat(out, op == WS_OP_PONG ? "PONG:" : op == WS_OP_PING ? "PING:"
                    : op == WS_OP_CLOSE ? "CLOSE" : "T");
        if (op != WS_OP_CLOSE) {
            strncat(out, (const char *)wire + off + 2, len);
        }
        strcat(out, "|");
        off += 2 + len;
    }
    return out;
}

/* A control frame replaces an unwritten one of its kind: a client that
 * pings and never reads holds one pong in the queue, not one per ping. */
static void test_ctl_coalesce(void)
{
    sendq q;
    char payload[16];
    size_t most = 0;
    int i;

    sendq_init(&q, 1);
    CHECK(sendq_resume(&q, 0) == 0);
    for (i = 0; i < 100000; i++) {
        snprintf(payload, sizeof(payload), "p%d", i);
        add_op(&q, WS_OP_PONG, payload);
        if (q.cq.len - q.cq.off > most) {
            most = q.cq.len - q.cq.off;
        }
    }
    CHECK(most <= SENDQ_PONGS_KEPT * (2 + 6));
    {
        /* the latest SENDQ_PONGS_KEPT pings' payloads, in order */
        char want[1024] = "";
        for (i = 100000 - SENDQ_PONGS_KEPT; i < 100000; i++) {
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "PONG:p%d|", i);
        }
        CHECK(!strcmp(written(&q), want));
    }
    /* Fewer than that are all answered. */
    for (i = 0; i < 10; i++) {
        snprintf(payload, sizeof(payload), "q%d", i);
        add_op(&q, WS_OP_PONG, payload);
    }
    CHECK(!strcmp(written(&q), "PONG:q0|PONG:q1|PONG:q2|PONG:q3|PONG:q4|PONG:q5|PONG:q6|"
                               "PONG:q7|PONG:q8|PONG:q9|"));

    /* Kinds: pong, ping, and each v1 control message by its letter; a
     * newer one takes the place at the end of the queue. */
    add_op(&q, WS_OP_PONG, "a");
    add_op(&q, WS_OP_TEXT, "A1");
    add_op(&q, WS_OP_PING, "");
    add_op(&q, WS_OP_TEXT, "P");
    add_op(&q, WS_OP_TEXT, "A2");
    add_op(&q, WS_OP_PONG, "b");
    add_op(&q, WS_OP_TEXT, "A3");
    add_op(&q, WS_OP_PING, "");
    CHECK(!strcmp(written(&q), "PONG:a|TP|PONG:b|TA3|PING:|"));

    /* The frame being written is never replaced: it is finished, and the
     * newer one of its kind follows. */
    {
        const unsigned char *p;
        add_op(&q, WS_OP_PONG, "first");
        CHECK(sendq_peek(&q, &p) == 7);
        sendq_wrote(&q, 3);
        add_op(&q, WS_OP_TEXT, "A5");
        add_op(&q, WS_OP_TEXT, "A6");
        CHECK(sendq_peek(&q, &p) == 4);               /* the rest of "first" */
        CHECK(!memcmp(p, "irst", 4));
        sendq_wrote(&q, 4);
        CHECK(!strcmp(written(&q), "TA6|"));
        add_op(&q, WS_OP_TEXT, "A7");
        CHECK(sendq_peek(&q, &p) == 4);
        sendq_wrote(&q, 1);                           /* "A7" is being written */
        add_op(&q, WS_OP_TEXT, "A8");
        CHECK(sendq_peek(&q, &p) == 3 && !memcmp(p, "\x02" "A7", 3));
        sendq_wrote(&q, 3);
        CHECK(!strcmp(written(&q), "TA8|"));
        sendq_free(&q);
        sendq_init(&q, 1);
        CHECK(sendq_resume(&q, 0) == 0);
    }

    /* Data waits behind control frames; a close sent now is not a kind
     * that pongs replace, and nothing is queued after it. */
    add_data(&q, "1");
    add_op(&q, WS_OP_TEXT, "Ax");
    add_op(&q, WS_OP_TEXT, "Ay");
    CHECK(!strcmp(written(&q), "TAy|TD1|"));
    sendq_free(&q);
}

int main(void)
{
    test_plain();
    test_retain();
    test_random();
    test_close_now();
    test_late_ack();
    test_ack_unwritten();
    test_ctl_coalesce();
    return UNIT_DONE("test_sendq");
}
