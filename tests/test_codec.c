/* test_codec.c -- unit tests for ws_codec.c: UTF-8, masking, encoders and
 * the frame parser, fed whole, byte by byte and in random chunks. */

#include "ws_codec.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    ws_event_type type;
    int binary;
    unsigned code;
    size_t len;
    uint64_t hash;
    unsigned char head[16];
    const char *reason;
} rec;

#define MAX_RECS 512

typedef struct {
    rec ev[MAX_RECS];
    int n;
    size_t consumed;        /* bytes consumed until the final event */
} recs;

static uint64_t fnv(const unsigned char *d, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= d[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* chunking: 0 whole buffer, 1 byte at a time, >1 random chunks (seed). */
static void run(size_t max, int require_mask, const unsigned char *buf,
                size_t len, unsigned chunking, recs *out)
{
    ws_parser *p = ws_parser_create(max, require_mask);
    size_t pos = 0;
    int done = 0;

    out->n = 0;
    out->consumed = 0;
    if (!p) {
        out->n = -3;
        return;
    }
    if (chunking > 1) {
        rng_state = chunking;
    }
    while (!done && pos < len) {
        size_t chunk = len - pos;
        size_t off = 0;
        if (chunking == 1) {
            chunk = 1;
        }
        else if (chunking > 1) {
            size_t c = 1 + rnd() % 37;
            if (c < chunk) {
                chunk = c;
            }
        }
        /* Feed the chunk until it is consumed. */
        for (;;) {
            ws_event ev;
            size_t used = 12345;
            ws_event_type t = ws_parser_feed(p, buf + pos + off, chunk - off,
                                             &used, &ev);
            if (used > chunk - off) {
                /* Never consume more than given. */
                out->n = -1;
                ws_parser_destroy(p);
                return;
            }
            off += used;
            if (t == WS_EV_NEED_MORE) {
                if (off != chunk) {
                    out->n = -2;
                    ws_parser_destroy(p);
                    return;
                }
                break;
            }
            if (out->n < MAX_RECS) {
                rec *r = &out->ev[out->n++];
                memset(r, 0, sizeof(*r));
                r->type = t;
                r->binary = ev.binary;
                r->code = ev.code;
                r->len = ev.len;
                r->hash = ev.len ? fnv(ev.data, ev.len) : 0;
                if (ev.len) {
                    memcpy(r->head, ev.data, ev.len < 16 ? ev.len : 16);
                }
                r->reason = ev.reason;
            }
            if (t == WS_EV_CLOSE || t == WS_EV_ERROR) {
                done = 1;
                out->consumed = pos + off;
                break;
            }
            if (off == chunk) {
                break;
            }
        }
        pos += chunk;
    }
    if (!done) {
        out->consumed = pos;
    }
    ws_parser_destroy(p);
}

static int recs_equal(const recs *a, const recs *b)
{
    int i;
    if (a->n != b->n) {
        return 0;
    }
    /* Where exactly an error stops consuming depends on the chunking. */
    if (a->consumed != b->consumed
        && !(a->n > 0 && a->ev[a->n - 1].type == WS_EV_ERROR)) {
        return 0;
    }
    for (i = 0; i < a->n; i++) {
        const rec *x = &a->ev[i], *y = &b->ev[i];
        if (x->type != y->type || x->binary != y->binary || x->code != y->code
            || x->len != y->len || x->hash != y->hash) {
            return 0;
        }
    }
    return 1;
}

/* Runs whole, byte-at-a-time and several random chunkings; checks they all
 * agree, and returns the whole-buffer result in out. */
static int run_all(size_t max, int require_mask, const unsigned char *buf,
                   size_t len, recs *out)
{
    static recs other;
    unsigned seeds[] = { 1, 2, 7, 99, 1234 };
    size_t i;
    int ok = 1;

    run(max, require_mask, buf, len, 0, out);
    if (out->n < 0) {
        return 0;
    }
    for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        run(max, require_mask, buf, len, seeds[i], &other);
        if (!recs_equal(out, &other)) {
            ok = 0;
        }
    }
    return ok;
}

/* Appends one frame to out (masked with a fixed varying mask when mask != 0).
 * Returns the new length. */
static size_t put_frame(unsigned char *out, size_t at, int fin, int op,
                        const void *payload, size_t len, int mask)
{
    unsigned char m[4];
    size_t h;
    m[0] = (unsigned char)(0x37 + at);
    m[1] = 0xfa;
    m[2] = (unsigned char)(0x21 ^ len);
    m[3] = 0x3d;
    h = ws_frame_header(out + at, fin, op, len, mask ? m : NULL);
    if (len) {
        memcpy(out + at + h, payload, len);
    }
    if (mask) {
        ws_mask(out + at + h, len, m, 0);
    }
    return at + h + len;
}

/* One shot feed of a buffer to a fresh parser, returning the first event. */
static ws_event_type one(size_t max, int require_mask, const unsigned char *buf,
                         size_t len, ws_event *ev, size_t *used)
{
    static ws_parser *p;
    size_t u;
    if (p) {
        ws_parser_destroy(p);
    }
    p = ws_parser_create(max, require_mask);
    if (!used) {
        used = &u;
    }
    if (!buf) {
        ws_parser_destroy(p);
        p = NULL;
        return WS_EV_NEED_MORE;
    }
    return ws_parser_feed(p, buf, len, used, ev);
}

static void one_cleanup(void)
{
    one(0, 0, NULL, 0, NULL, NULL);
}

/* Expect an error with code, both whole and byte at a time. */
static int expect_error(size_t max, int rm, const unsigned char *buf, size_t len,
                        unsigned code)
{
    static recs r;
    if (!run_all(max, rm, buf, len, &r)) {
        return 0;
    }
    return r.n >= 1 && r.ev[r.n - 1].type == WS_EV_ERROR
        && r.ev[r.n - 1].code == code && r.ev[r.n - 1].reason != NULL
        && r.ev[r.n - 1].reason[0] != '\0';
}

static unsigned char big[300000];
static unsigned char big2[300000];

/* ---- UTF-8 -------------------------------------------------------------- */

/* Reference decoder: 1 if s[0..n) is valid UTF-8 (slow and obvious). */
static int ref_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], cp, need, k;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { need = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { need = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { need = 3; cp = c & 0x07; }
        else return 0;
        if (i + need >= n) return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800)
            || (need == 3 && cp < 0x10000)) return 0;
        if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
        if (cp > 0x10FFFF) return 0;
        i += need + 1;
    }
    return 1;
}

/* 1 if some prefix of s is already impossible (reference). */
static int ref_prefix_bad(const unsigned char *s, size_t n)
{
    /* A prefix is fine if some completion makes it valid: try to finish the
     * last partial character with continuation bytes. */
    static const unsigned char fills[] = { 0x80, 0x90, 0xA0, 0xBF, 0x8F, 0x9F };
    unsigned char tmp[16];
    size_t a, b, c;
    if (ref_utf8(s, n)) return 0;
    if (n > 12) return 1;
    memcpy(tmp, s, n);
    for (a = 0; a < sizeof(fills); a++) {
        tmp[n] = fills[a];
        if (ref_utf8(tmp, n + 1)) return 0;
        for (b = 0; b < sizeof(fills); b++) {
            tmp[n + 1] = fills[b];
            if (ref_utf8(tmp, n + 2)) return 0;
            for (c = 0; c < sizeof(fills); c++) {
                tmp[n + 2] = fills[c];
                if (ref_utf8(tmp, n + 3)) return 0;
            }
        }
    }
    return 1;
}

static void test_utf8(void)
{
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    static const unsigned char vals[] = {
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
        0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5,
        0xF7, 0xF8, 0xFE, 0xFF
    };
    size_t nv = sizeof(vals), a, b, c, d;
    int agree = 1, prefix_agree = 1;
    unsigned char s[4];
    uint32_t st;
    size_t i;

    CHECK(ws_utf8_valid((const unsigned char *)"", 0));
    CHECK(ws_utf8_valid((const unsigned char *)"hello", 5));
    CHECK(ws_utf8_valid((const unsigned char *)kosme, strlen(kosme)));
    CHECK(ws_utf8_valid((const unsigned char *)"\x7f", 1));
    CHECK(ws_utf8_valid((const unsigned char *)"\xc2\x80", 2));        /* U+0080 */
    CHECK(ws_utf8_valid((const unsigned char *)"\xdf\xbf", 2));        /* U+07FF */
    CHECK(ws_utf8_valid((const unsigned char *)"\xe0\xa0\x80", 3));    /* U+0800 */
    CHECK(ws_utf8_valid((const unsigned char *)"\xed\x9f\xbf", 3));    /* U+D7FF */
    CHECK(ws_utf8_valid((const unsigned char *)"\xee\x80\x80", 3));    /* U+E000 */
    CHECK(ws_utf8_valid((const unsigned char *)"\xef\xbf\xbf", 3));    /* U+FFFF */
    CHECK(ws_utf8_valid((const unsigned char *)"\xf0\x90\x80\x80", 4)); /* U+10000 */
    CHECK(ws_utf8_valid((const unsigned char *)"\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    CHECK(ws_utf8_valid((const unsigned char *)"\xef\xbb\xbf", 3));    /* BOM */

    CHECK(!ws_utf8_valid((const unsigned char *)"\x80", 1));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xbf", 1));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xc0\x80", 2));       /* overlong NUL */
    CHECK(!ws_utf8_valid((const unsigned char *)"\xc1\xbf", 2));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xe0\x80\x80", 3));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xe0\x9f\xbf", 3));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf0\x80\x80\x80", 4));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf0\x8f\xbf\xbf", 4));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));    /* U+D800 */
    CHECK(!ws_utf8_valid((const unsigned char *)"\xed\xbf\xbf", 3));    /* U+DFFF */
    CHECK(!ws_utf8_valid((const unsigned char *)"\xed\xa0\x80\xed\xb0\x80", 6));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* U+110000 */
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf5\x80\x80\x80", 4));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf8\x88\x80\x80\x80", 5));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xfe", 1));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xff", 1));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xce", 1));             /* truncated */
    CHECK(!ws_utf8_valid((const unsigned char *)"\xe1\xbd", 2));
    CHECK(!ws_utf8_valid((const unsigned char *)"\xf0\x90\x80", 3));
    CHECK(!ws_utf8_valid((const unsigned char *)"a\xc2z", 3));

    /* Incremental: states inside a character are neither accept nor reject. */
    st = ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"\xf0", 1);
    CHECK(st != WS_UTF8_ACCEPT && st != WS_UTF8_REJECT);
    st = ws_utf8_step(st, (const unsigned char *)"\x90", 1);
    CHECK(st != WS_UTF8_ACCEPT && st != WS_UTF8_REJECT);
    st = ws_utf8_step(st, (const unsigned char *)"\x80", 1);
    CHECK(st != WS_UTF8_ACCEPT && st != WS_UTF8_REJECT);
    st = ws_utf8_step(st, (const unsigned char *)"\x80", 1);
    CHECK(st == WS_UTF8_ACCEPT);
    /* Reject is sticky and fail-fast. */
    st = ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"\xed\xa0", 2);
    CHECK(st == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(st, (const unsigned char *)"a", 1) == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"\xf4\x90", 2)
          == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"\xe0\x9f", 2)
          == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"\xf0\x8f", 2)
          == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(12345, (const unsigned char *)"a", 1) == WS_UTF8_REJECT);
    CHECK(ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)"", 0) == WS_UTF8_ACCEPT);

    /* Split kosme at every boundary: the state carries across. */
    for (i = 0; i <= strlen(kosme); i++) {
        st = ws_utf8_step(WS_UTF8_ACCEPT, (const unsigned char *)kosme, i);
        CHECK(st != WS_UTF8_REJECT);
        st = ws_utf8_step(st, (const unsigned char *)kosme + i, strlen(kosme) - i);
        CHECK(st == WS_UTF8_ACCEPT);
    }

    /* Long ASCII runs with one bad byte at every position (word fast path). */
    {
        unsigned char buf[80];
        int all = 1;
        memset(buf, 'a', sizeof(buf));
        CHECK(ws_utf8_valid(buf, sizeof(buf)));
        for (i = 0; i < sizeof(buf); i++) {
            buf[i] = 0x80;
            if (ws_utf8_valid(buf, sizeof(buf))) all = 0;
            if (ws_utf8_step(WS_UTF8_ACCEPT, buf, i + 1) != WS_UTF8_REJECT) all = 0;
            if (ws_utf8_step(WS_UTF8_ACCEPT, buf, i) != WS_UTF8_ACCEPT) all = 0;
            buf[i] = 'a';
        }
        CHECK(all);
        /* A multibyte character at every alignment. */
        all = 1;
        for (i = 0; i + 4 <= sizeof(buf); i++) {
            memcpy(buf + i, "\xf0\x9f\x98\x80", 4);
            if (!ws_utf8_valid(buf, sizeof(buf))) all = 0;
            memset(buf, 'a', sizeof(buf));
        }
        CHECK(all);
    }

    /* Against the reference decoder: all sequences of up to 4 bytes drawn
     * from the interesting values, validity and prefix rejection. */
    for (a = 0; a < nv; a++) {
        s[0] = vals[a];
        if ((ws_utf8_valid(s, 1) != 0) != (ref_utf8(s, 1) != 0)) agree = 0;
        for (b = 0; b < nv; b++) {
            s[1] = vals[b];
            if ((ws_utf8_valid(s, 2) != 0) != (ref_utf8(s, 2) != 0)) agree = 0;
            if ((ws_utf8_step(0, s, 2) == WS_UTF8_REJECT) != ref_prefix_bad(s, 2))
                prefix_agree = 0;
            for (c = 0; c < nv; c++) {
                s[2] = vals[c];
                if ((ws_utf8_valid(s, 3) != 0) != (ref_utf8(s, 3) != 0)) agree = 0;
                if ((ws_utf8_step(0, s, 3) == WS_UTF8_REJECT) != ref_prefix_bad(s, 3))
                    prefix_agree = 0;
                for (d = 0; d < nv; d++) {
                    s[3] = vals[d];
                    if ((ws_utf8_valid(s, 4) != 0) != (ref_utf8(s, 4) != 0))
                        agree = 0;
                }
            }
        }
    }
    CHECK(agree);
    CHECK(prefix_agree);
    /* Every code point encoded by hand is accepted; surrogates are not. */
    {
        unsigned long cp;
        int all = 1;
        for (cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
            unsigned char e[4];
            size_t n;
            if (cp < 0x80) { e[0] = (unsigned char)cp; n = 1; }
            else if (cp < 0x800) {
                e[0] = (unsigned char)(0xC0 | (cp >> 6));
                e[1] = (unsigned char)(0x80 | (cp & 0x3F)); n = 2;
            }
            else if (cp < 0x10000) {
                e[0] = (unsigned char)(0xE0 | (cp >> 12));
                e[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                e[2] = (unsigned char)(0x80 | (cp & 0x3F)); n = 3;
            }
            else {
                e[0] = (unsigned char)(0xF0 | (cp >> 18));
                e[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                e[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                e[3] = (unsigned char)(0x80 | (cp & 0x3F)); n = 4;
            }
            if ((ws_utf8_valid(e, n) != 0) != !(cp >= 0xD800 && cp <= 0xDFFF))
                all = 0;
        }
        CHECK(all);
    }
}

/* ---- masking and encoders ----------------------------------------------- */

static void test_mask(void)
{
    static const unsigned char m[4] = { 0x12, 0x34, 0x56, 0x78 };
    unsigned char a[200], b[200];
    size_t len, off, i;
    int all = 1;

    for (len = 0; len < 100; len++) {
        for (off = 0; off < 9; off++) {
            for (i = 0; i < len; i++) {
                a[i] = b[i] = (unsigned char)(i * 7 + off);
            }
            ws_mask(a, len, m, off);
            for (i = 0; i < len; i++) {
                if (a[i] != (unsigned char)(b[i] ^ m[(i + off) & 3])) all = 0;
            }
            ws_mask(a, len, m, off);
            if (memcmp(a, b, len) != 0) all = 0;
        }
    }
    CHECK(all);

    /* Masking in two pieces equals masking at once, at odd offsets. */
    all = 1;
    for (i = 0; i < 200; i++) {
        a[i] = b[i] = (unsigned char)(i ^ 0x5A);
    }
    ws_mask(a, 200, m, 0);
    for (off = 0; off <= 200; off += 13) {
        memcpy(b, a, 0);
        {
            unsigned char c[200];
            size_t k;
            for (k = 0; k < 200; k++) c[k] = (unsigned char)(k ^ 0x5A);
            ws_mask(c, off, m, 0);
            ws_mask(c + off, 200 - off, m, off);
            if (memcmp(c, a, 200) != 0) all = 0;
        }
    }
    CHECK(all);
    /* A 64-bit offset beyond 4 GiB keeps the phase. */
    a[0] = 0;
    ws_mask(a, 1, m, UINT64_C(0x100000003));
    CHECK(a[0] == m[3]);
    /* RFC 6455 5.7: "Hello" masked with 37 fa 21 3d. */
    {
        static const unsigned char mk[4] = { 0x37, 0xfa, 0x21, 0x3d };
        unsigned char h[5] = { 'H', 'e', 'l', 'l', 'o' };
        ws_mask(h, 5, mk, 0);
        CHECK(memcmp(h, "\x7f\x9f\x4d\x51\x58", 5) == 0);
    }
}

static void test_frame_header(void)
{
    unsigned char h[WS_MAX_HEADER];
    static const unsigned char m[4] = { 1, 2, 3, 4 };

    CHECK(ws_frame_header(h, 1, WS_OP_TEXT, 5, NULL) == 2);
    CHECK(h[0] == 0x81 && h[1] == 0x05);
    CHECK(ws_frame_header(h, 0, WS_OP_TEXT, 3, NULL) == 2);
    CHECK(h[0] == 0x01 && h[1] == 0x03);
    CHECK(ws_frame_header(h, 1, WS_OP_CONT, 2, NULL) == 2);
    CHECK(h[0] == 0x80 && h[1] == 0x02);
    CHECK(ws_frame_header(h, 1, WS_OP_PING, 0, NULL) == 2);
    CHECK(h[0] == 0x89 && h[1] == 0x00);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, 125, NULL) == 2);
    CHECK(h[1] == 125);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, 126, NULL) == 4);
    CHECK(h[0] == 0x82 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, 256, NULL) == 4);
    CHECK(h[1] == 0x7E && h[2] == 0x01 && h[3] == 0x00);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, 65535, NULL) == 4);
    CHECK(h[2] == 0xFF && h[3] == 0xFF);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, 65536, NULL) == 10);
    CHECK(h[1] == 127 && memcmp(h + 2, "\0\0\0\0\0\x01\0\0", 8) == 0);
    CHECK(ws_frame_header(h, 1, WS_OP_BINARY, UINT64_C(0x0102030405060708), NULL) == 10);
    CHECK(memcmp(h + 2, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) == 0);
    CHECK(ws_frame_header(h, 1, WS_OP_TEXT, 5, m) == 6);
    CHECK(h[1] == 0x85 && memcmp(h + 2, m, 4) == 0);
    CHECK(ws_frame_header(h, 1, WS_OP_TEXT, 300, m) == 8);
    CHECK(h[1] == 0xFE && memcmp(h + 4, m, 4) == 0);
    CHECK(ws_frame_header(h, 1, WS_OP_TEXT, 70000, m) == 14);
    CHECK(h[1] == 0xFF && memcmp(h + 10, m, 4) == 0);
    CHECK(ws_frame_header(h, 1, WS_OP_CLOSE, 2, NULL) == 2 && h[0] == 0x88);
    CHECK(ws_frame_header(h, 1, WS_OP_PONG, 2, NULL) == 2 && h[0] == 0x8A);
}

static void test_close_helpers(void)
{
    unsigned char out[WS_MAX_CONTROL];
    char reason[400];
    unsigned code;
    int all = 1;
    size_t n, i;

    /* Validity ranges (RFC 6455 7.4 plus the IANA registered 1012-1014). */
    for (code = 0; code < 70000; code++) {
        int want = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
                   || (code >= 3000 && code <= 4999);
        if ((ws_close_code_valid(code) != 0) != want) all = 0;
    }
    CHECK(all);
    CHECK(ws_close_code_valid(1000));
    CHECK(ws_close_code_valid(1001));
    CHECK(ws_close_code_valid(1003));
    CHECK(!ws_close_code_valid(1004));
    CHECK(!ws_close_code_valid(1005));
    CHECK(!ws_close_code_valid(1006));
    CHECK(ws_close_code_valid(1007));
    CHECK(ws_close_code_valid(1011));
    CHECK(ws_close_code_valid(1012));
    CHECK(ws_close_code_valid(1013));
    CHECK(ws_close_code_valid(1014));
    CHECK(!ws_close_code_valid(1015));
    CHECK(!ws_close_code_valid(1016));
    CHECK(!ws_close_code_valid(2999));
    CHECK(ws_close_code_valid(3000));
    CHECK(ws_close_code_valid(4999));
    CHECK(!ws_close_code_valid(5000));
    CHECK(!ws_close_code_valid(0));
    CHECK(!ws_close_code_valid(999));
    CHECK(!ws_close_code_valid(65535));
    CHECK(!ws_close_code_valid(0x100000u + 1000u));

    n = ws_close_payload(out, 1000, NULL);
    CHECK(n == 2 && out[0] == 0x03 && out[1] == 0xE8);
    n = ws_close_payload(out, 1001, "");
    CHECK(n == 2 && out[0] == 0x03 && out[1] == 0xE9);
    n = ws_close_payload(out, 4000, "bye");
    CHECK(n == 5 && out[0] == 0x0F && out[1] == 0xA0 && memcmp(out + 2, "bye", 3) == 0);
    /* Codes that must not go on the wire give an empty payload. */
    CHECK(ws_close_payload(out, 1005, "x") == 0);
    CHECK(ws_close_payload(out, 1006, NULL) == 0);
    CHECK(ws_close_payload(out, 0, NULL) == 0);

    /* ASCII truncated at 123 bytes. */
    memset(reason, 'r', 300);
    reason[300] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == WS_MAX_CONTROL);
    reason[123] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == 125);
    reason[122] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == 124);

    /* Two-byte characters: 123 is odd, so 122 bytes fit. */
    for (i = 0; i < 100; i++) memcpy(reason + 2 * i, "\xc3\xa9", 2);
    reason[200] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == 2 + 122);
    CHECK(ws_utf8_valid(out + 2, n - 2));
    /* Three-byte characters: 41 * 3 = 123 fit exactly. */
    for (i = 0; i < 60; i++) memcpy(reason + 3 * i, "\xe2\x82\xac", 3);
    reason[180] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == 2 + 123);
    CHECK(ws_utf8_valid(out + 2, n - 2));
    /* Four-byte characters: 30 * 4 = 120. */
    for (i = 0; i < 40; i++) memcpy(reason + 4 * i, "\xf0\x9f\x98\x80", 4);
    reason[160] = 0;
    n = ws_close_payload(out, 1000, reason);
    CHECK(n == 2 + 120);
    CHECK(ws_utf8_valid(out + 2, n - 2));
    /* Every shift of a mixed string still cuts on a boundary. */
    all = 1;
    for (i = 0; i < 8; i++) {
        size_t k;
        memset(reason, 'a', i);
        for (k = 0; k < 50; k++) memcpy(reason + i + 4 * k, "\xf0\x9f\x98\x80", 4);
        reason[i + 200] = 0;
        n = ws_close_payload(out, 1000, reason);
        if (n < 2 + 120 || !ws_utf8_valid(out + 2, n - 2)) all = 0;
    }
    CHECK(all);
    /* An invalid byte in the reason ends it. */
    n = ws_close_payload(out, 1000, "ok\xff" "bad");
    CHECK(n == 4 && memcmp(out + 2, "ok", 2) == 0);
    n = ws_close_payload(out, 1000, "ok\xc3");
    CHECK(n == 4);
}

/* ---- parser ------------------------------------------------------------- */

static void test_parser_basic(void)
{
    static recs r;
    ws_event ev;
    size_t used;
    unsigned char buf[256];
    size_t n;

    /* RFC 6455 5.7 examples. */
    {
        static const unsigned char masked_hello[] = {
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
        static const unsigned char hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
        static const unsigned char frag[] = {
            0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f };
        static const unsigned char ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
        static const unsigned char pong[] = {
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };

        CHECK(one(1000, 1, masked_hello, sizeof(masked_hello), &ev, &used) == WS_EV_MESSAGE);
        CHECK(used == sizeof(masked_hello));
        CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0 && ev.binary == 0);
        CHECK(one(1000, 1, hello, sizeof(hello), &ev, &used) == WS_EV_ERROR);
        CHECK(ev.code == 1002);
        CHECK(one(1000, 0, hello, sizeof(hello), &ev, &used) == WS_EV_MESSAGE);
        CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
        CHECK(run_all(1000, 0, frag, sizeof(frag), &r));
        CHECK(r.n == 1 && r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == 5
              && memcmp(r.ev[0].head, "Hello", 5) == 0);
        CHECK(one(1000, 0, ping, sizeof(ping), &ev, &used) == WS_EV_PING);
        CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
        CHECK(one(1000, 1, pong, sizeof(pong), &ev, &used) == WS_EV_PONG);
        CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
        /* A masked frame is also accepted by a client-side parser. */
        CHECK(one(1000, 0, masked_hello, sizeof(masked_hello), &ev, &used) == WS_EV_MESSAGE);
        CHECK(ev.len == 5 && memcmp(ev.data, "Hello", 5) == 0);
    }

    /* One event per call: two frames in one buffer. */
    {
        ws_parser *p = ws_parser_create(100, 1);
        n = put_frame(buf, 0, 1, WS_OP_TEXT, "ab", 2, 1);
        n = put_frame(buf, n, 1, WS_OP_BINARY, "\x00\xff", 2, 1);
        CHECK(ws_parser_feed(p, buf, n, &used, &ev) == WS_EV_MESSAGE);
        CHECK(used == 8 && ev.len == 2 && !ev.binary && memcmp(ev.data, "ab", 2) == 0);
        CHECK(ws_parser_feed(p, buf + used, n - used, &used, &ev) == WS_EV_MESSAGE);
        CHECK(used == 8 && ev.len == 2 && ev.binary && memcmp(ev.data, "\x00\xff", 2) == 0);
        CHECK(ws_parser_feed(p, buf, 0, &used, &ev) == WS_EV_NEED_MORE && used == 0);
        /* Partial header then the rest. */
        n = put_frame(buf, 0, 1, WS_OP_TEXT, "xyz", 3, 1);
        CHECK(ws_parser_feed(p, buf, 1, &used, &ev) == WS_EV_NEED_MORE && used == 1);
        CHECK(ws_parser_feed(p, buf + 1, 4, &used, &ev) == WS_EV_NEED_MORE && used == 4);
        CHECK(ws_parser_feed(p, buf + 5, n - 5, &used, &ev) == WS_EV_MESSAGE);
        CHECK(ev.len == 3 && memcmp(ev.data, "xyz", 3) == 0);
        /* NULL buffer with zero length is fine. */
        CHECK(ws_parser_feed(p, NULL, 0, &used, &ev) == WS_EV_NEED_MORE && used == 0);
        ws_parser_destroy(p);
    }

    /* Empty messages and empty fragments. */
    n = put_frame(buf, 0, 1, WS_OP_TEXT, "", 0, 1);
    n = put_frame(buf, n, 1, WS_OP_BINARY, "", 0, 1);
    n = put_frame(buf, n, 0, WS_OP_TEXT, "", 0, 1);
    n = put_frame(buf, n, 0, WS_OP_CONT, "", 0, 1);
    n = put_frame(buf, n, 1, WS_OP_CONT, "", 0, 1);
    n = put_frame(buf, n, 1, WS_OP_PING, "", 0, 1);
    n = put_frame(buf, n, 1, WS_OP_CLOSE, "", 0, 1);
    CHECK(run_all(10, 1, buf, n, &r));
    CHECK(r.n == 5);
    CHECK(r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == 0 && !r.ev[0].binary);
    CHECK(r.ev[1].type == WS_EV_MESSAGE && r.ev[1].len == 0 && r.ev[1].binary);
    CHECK(r.ev[2].type == WS_EV_MESSAGE && r.ev[2].len == 0 && !r.ev[2].binary);
    CHECK(r.ev[3].type == WS_EV_PING && r.ev[3].len == 0);
    CHECK(r.ev[4].type == WS_EV_CLOSE && r.ev[4].code == 1005 && r.ev[4].len == 0);
    CHECK(r.consumed == n);

    /* Creation limits. */
    CHECK(ws_parser_create(0, 1) == NULL);
    ws_parser_destroy(NULL);
}

static void test_parser_lengths(void)
{
    static recs r;
    size_t n, i;
    size_t sizes[] = { 0, 1, 125, 126, 127, 200, 65535, 65536, 70000, 262144 };
    int all = 1;

    for (i = 0; i < 256 * 1024 + 8; i++) {
        big2[i] = (unsigned char)(i * 31 + (i >> 8));
    }
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t s = sizes[i];
        n = put_frame(big, 0, 1, WS_OP_BINARY, big2, s, 1);
        if (!run_all(300000, 1, big, n, &r)) all = 0;
        if (r.n != 1 || r.ev[0].type != WS_EV_MESSAGE || r.ev[0].len != s
            || r.ev[0].hash != (s ? fnv(big2, s) : 0) || !r.ev[0].binary) all = 0;
        /* Exactly at the limit is accepted, one byte over is 1009. */
        if (s > 0) {
            run(s, 1, big, n, 0, &r);
            if (r.n != 1 || r.ev[0].type != WS_EV_MESSAGE) all = 0;
            if (s > 1) {
                run(s - 1, 1, big, n, 0, &r);
                if (r.n != 1 || r.ev[0].type != WS_EV_ERROR || r.ev[0].code != 1009)
                    all = 0;
            }
        }
    }
    CHECK(all);

    /* Non-minimal length forms are accepted. */
    {
        static const unsigned char f16[] = { 0x82, 0xFE, 0x00, 0x03, 0, 0, 0, 0, 'a', 'b', 'c' };
        static const unsigned char f64[] = { 0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x03,
                                             0, 0, 0, 0, 'a', 'b', 'c' };
        CHECK(run_all(10, 1, f16, sizeof(f16), &r));
        CHECK(r.n == 1 && r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == 3);
        CHECK(run_all(10, 1, f64, sizeof(f64), &r));
        CHECK(r.n == 1 && r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == 3
              && memcmp(r.ev[0].head, "abc", 3) == 0);
    }

    /* 1009 as soon as the header is in, without the payload. */
    {
        static const unsigned char h7[] = { 0x82, 0x8B };                /* 11 > 10 */
        static const unsigned char h16[] = { 0x82, 0xFE, 0x01, 0x00 };   /* 256 */
        static const unsigned char h64[] = { 0x82, 0xFF, 0, 0, 0, 0x01, 0, 0, 0, 0 };
        static const unsigned char hmax[] = { 0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF,
                                              0xFF, 0xFF, 0xFF, 0xFF };
        static const unsigned char top[] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1 };
        static const unsigned char topu[] = { 0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1 };
        ws_event ev;
        size_t used;
        CHECK(one(10, 1, h7, sizeof(h7), &ev, &used) == WS_EV_ERROR && ev.code == 1009);
        CHECK(used == 2);
        CHECK(one(255, 1, h16, sizeof(h16), &ev, &used) == WS_EV_ERROR && ev.code == 1009);
        CHECK(used == 4);
        CHECK(one(256, 1, h16, sizeof(h16), &ev, &used) == WS_EV_NEED_MORE && used == 4);
        CHECK(one(1 << 20, 1, h64, sizeof(h64), &ev, &used) == WS_EV_ERROR && ev.code == 1009);
        CHECK(used == 10);
        CHECK(one((size_t)-1 >> 1, 1, hmax, sizeof(hmax), &ev, &used) == WS_EV_NEED_MORE);
        CHECK(one(1 << 20, 1, hmax, sizeof(hmax), &ev, &used) == WS_EV_ERROR
              && ev.code == 1009);
        CHECK(one((size_t)-1, 1, top, sizeof(top), &ev, &used) == WS_EV_ERROR
              && ev.code == 1002);
        CHECK(one((size_t)-1, 0, topu, sizeof(topu), &ev, &used) == WS_EV_ERROR
              && ev.code == 1002);
        CHECK(expect_error(10, 1, h7, sizeof(h7), 1009));
        CHECK(expect_error(255, 1, h16, sizeof(h16), 1009));
        CHECK(expect_error(100, 1, h64, sizeof(h64), 1009));
        CHECK(expect_error(100, 1, top, sizeof(top), 1002));
    }

    /* 1009 across fragments: the total counts, checked at the header. */
    {
        ws_event ev;
        size_t used;
        n = put_frame(big, 0, 0, WS_OP_TEXT, "aaaaaaaaaa", 10, 1);
        n = put_frame(big, n, 1, WS_OP_CONT, "bbbbbbbbbb", 10, 1);
        CHECK(expect_error(19, 1, big, n, 1009));
        run(20, 1, big, n, 0, &r);
        CHECK(r.n == 1 && r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == 20);
        /* Only the second header, without its payload. */
        CHECK(one(19, 1, big, 16 + 2, &ev, &used) == WS_EV_ERROR && ev.code == 1009);
        /* Control frames do not count toward the limit. */
        n = put_frame(big, 0, 0, WS_OP_TEXT, "aaaaaaaaaa", 10, 1);
        n = put_frame(big, n, 1, WS_OP_PING, "0123456789012345678901234567890123456789", 40, 1);
        n = put_frame(big, n, 1, WS_OP_CONT, "", 0, 1);
        CHECK(run_all(10, 1, big, n, &r));
        CHECK(r.n == 2 && r.ev[0].type == WS_EV_PING && r.ev[0].len == 40
              && r.ev[1].type == WS_EV_MESSAGE && r.ev[1].len == 10);
        /* The limit starts again for each message. */
        n = 0;
        for (i = 0; i < 20; i++) {
            n = put_frame(big, n, 1, WS_OP_BINARY, "0123456789", 10, 1);
        }
        CHECK(run_all(10, 1, big, n, &r));
        CHECK(r.n == 20 && r.ev[19].type == WS_EV_MESSAGE && r.ev[19].len == 10);
    }
}

static void test_parser_fragments(void)
{
    static recs r;
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    size_t klen = strlen(kosme);
    size_t n, i, j;
    int all = 1, all2 = 1;

    /* Fragmentation with interleaved ping and pong. */
    n = put_frame(big, 0, 0, WS_OP_TEXT, "frag1 ", 6, 1);
    n = put_frame(big, n, 1, WS_OP_PING, "p1", 2, 1);
    n = put_frame(big, n, 0, WS_OP_CONT, "frag2 ", 6, 1);
    n = put_frame(big, n, 1, WS_OP_PONG, "p2", 2, 1);
    n = put_frame(big, n, 1, WS_OP_PING, "", 0, 1);
    n = put_frame(big, n, 1, WS_OP_CONT, "end", 3, 1);
    n = put_frame(big, n, 1, WS_OP_BINARY, "\x01\x02", 2, 1);
    CHECK(run_all(1000, 1, big, n, &r));
    CHECK(r.n == 5);
    CHECK(r.ev[0].type == WS_EV_PING && r.ev[0].len == 2 && memcmp(r.ev[0].head, "p1", 2) == 0);
    CHECK(r.ev[1].type == WS_EV_PONG && r.ev[1].len == 2 && memcmp(r.ev[1].head, "p2", 2) == 0);
    CHECK(r.ev[2].type == WS_EV_PING && r.ev[2].len == 0);
    CHECK(r.ev[3].type == WS_EV_MESSAGE && r.ev[3].len == 15 && !r.ev[3].binary
          && memcmp(r.ev[3].head, "frag1 frag2 end", 15) == 0);
    CHECK(r.ev[4].type == WS_EV_MESSAGE && r.ev[4].binary && r.ev[4].len == 2);

    /* Binary fragmented message keeps its type through continuations. */
    n = put_frame(big, 0, 0, WS_OP_BINARY, "\xff", 1, 1);
    n = put_frame(big, n, 0, WS_OP_CONT, "\xfe", 1, 1);
    n = put_frame(big, n, 1, WS_OP_CONT, "\xfd", 1, 1);
    CHECK(run_all(1000, 1, big, n, &r));
    CHECK(r.n == 1 && r.ev[0].binary && r.ev[0].len == 3
          && memcmp(r.ev[0].head, "\xff\xfe\xfd", 3) == 0);

    /* kosme split at every byte boundary into two fragments, with a ping
     * between them; and into one fragment per byte. */
    for (i = 0; i <= klen; i++) {
        n = put_frame(big, 0, 0, WS_OP_TEXT, kosme, i, 1);
        n = put_frame(big, n, 1, WS_OP_PING, "x", 1, 1);
        n = put_frame(big, n, 1, WS_OP_CONT, kosme + i, klen - i, 1);
        if (!run_all(100, 1, big, n, &r)) all = 0;
        if (r.n != 2 || r.ev[0].type != WS_EV_PING || r.ev[1].type != WS_EV_MESSAGE
            || r.ev[1].len != klen || memcmp(r.ev[1].head, kosme, klen) != 0) all = 0;
    }
    CHECK(all);
    n = put_frame(big, 0, 0, WS_OP_TEXT, kosme, 1, 1);
    for (i = 1; i < klen; i++) {
        n = put_frame(big, n, i + 1 == klen, WS_OP_CONT, kosme + i, 1, 1);
    }
    CHECK(run_all(100, 1, big, n, &r));
    CHECK(r.n == 1 && r.ev[0].type == WS_EV_MESSAGE && r.ev[0].len == klen);

    /* Invalid sequences split at every boundary: 1007, and as soon as the
     * invalid prefix is complete (before the final fragment arrives). */
    {
        static const char *bad[] = {
            "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited",
            "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80" "edited",
            "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf",
            "\xed\xbf\xbf", "\xef\xbf\xbf\xff", "abc\x80", "\xc2" "a",
        };
        for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
            size_t blen = strlen(bad[j]);
            for (i = 0; i <= blen; i++) {
                n = put_frame(big, 0, 0, WS_OP_TEXT, bad[j], i, 1);
                n = put_frame(big, n, 1, WS_OP_PONG, "", 0, 1);
                n = put_frame(big, n, 1, WS_OP_CONT, bad[j] + i, blen - i, 1);
                if (!expect_error(100, 1, big, n, 1007)) {
                    all2 = 0;
                    fprintf(stderr, "bad %zu split %zu\n", j, i);
                }
            }
            /* Fail fast: the message is never finished, yet it fails. */
            n = put_frame(big, 0, 0, WS_OP_TEXT, bad[j], blen, 1);
            run(100, 1, big, n, 1, &r);
            if (r.n != 1 || r.ev[0].type != WS_EV_ERROR || r.ev[0].code != 1007) {
                all2 = 0;
                fprintf(stderr, "bad %zu fast\n", j);
            }
        }
    }
    CHECK(all2);
    /* Truncated character at the end of a message. */
    n = put_frame(big, 0, 0, WS_OP_TEXT, "\xce", 1, 1);
    CHECK(run_all(100, 1, big, n, &r) && r.n == 0);
    n = put_frame(big, n, 1, WS_OP_CONT, "", 0, 1);
    CHECK(expect_error(100, 1, big, n, 1007));
    n = put_frame(big, 0, 1, WS_OP_TEXT, "ok\xf0\x9f\x98", 5, 1);
    CHECK(expect_error(100, 1, big, n, 1007));
    /* The error comes right where the bad byte is, not at the frame end. */
    {
        ws_event ev;
        size_t used;
        n = put_frame(big, 0, 1, WS_OP_TEXT, "abc\xff" "defghij", 11, 1);
        CHECK(one(100, 1, big, 6 + 4, &ev, &used) == WS_EV_ERROR && ev.code == 1007);
        CHECK(one(100, 1, big, 6 + 3, &ev, &used) == WS_EV_NEED_MORE);
    }
    /* Binary messages are not checked. */
    n = put_frame(big, 0, 1, WS_OP_BINARY, "\xff\xfe\xc0", 3, 1);
    CHECK(run_all(100, 1, big, n, &r) && r.n == 1 && r.ev[0].type == WS_EV_MESSAGE);
    /* UTF-8 state restarts for the next message. */
    n = put_frame(big, 0, 1, WS_OP_TEXT, "\xc3\xa9", 2, 1);
    n = put_frame(big, n, 1, WS_OP_TEXT, "\xa9", 1, 1);
    CHECK(expect_error(100, 1, big, n, 1007));
    n = put_frame(big, 0, 1, WS_OP_BINARY, "\xc3", 1, 1);
    n = put_frame(big, n, 1, WS_OP_TEXT, "\xa9", 1, 1);
    CHECK(expect_error(100, 1, big, n, 1007));
}

static void test_parser_errors(void)
{
    unsigned char buf[300];
    size_t n;
    int op;
    int all = 1;

    /* RSV bits. */
    buf[0] = 0xC1; buf[1] = 0x80; memset(buf + 2, 0, 4);
    CHECK(expect_error(100, 1, buf, 6, 1002));
    buf[0] = 0xA1;
    CHECK(expect_error(100, 1, buf, 6, 1002));
    buf[0] = 0x91;
    CHECK(expect_error(100, 1, buf, 6, 1002));
    buf[0] = 0xF9;
    CHECK(expect_error(100, 1, buf, 6, 1002));
    /* Unknown opcodes, data and control ranges. */
    for (op = 3; op <= 0xF; op++) {
        if (op == 8 || op == 9 || op == 10) continue;
        buf[0] = (unsigned char)(0x80 | op); buf[1] = 0x80;
        if (!expect_error(100, 1, buf, 6, 1002)) all = 0;
        if (!expect_error(100, 0, buf, 6, 1002)) all = 0;
    }
    CHECK(all);
    /* Fragmented control frames. */
    n = put_frame(buf, 0, 0, WS_OP_PING, "a", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 0, WS_OP_CLOSE, "", 0, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 0, WS_OP_PONG, "", 0, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* Control payload over 125. */
    memset(big2, 'p', 200);
    n = put_frame(buf, 0, 1, WS_OP_PING, big2, 126, 1);
    CHECK(expect_error(1000, 1, buf, n, 1002));
    n = put_frame(buf, 0, 1, WS_OP_PONG, big2, 126, 1);
    CHECK(expect_error(1000, 1, buf, n, 1002));
    n = put_frame(buf, 0, 1, WS_OP_PING, big2, 125, 1);
    {
        static recs r;
        CHECK(run_all(1, 1, buf, n, &r) && r.n == 1 && r.ev[0].type == WS_EV_PING
              && r.ev[0].len == 125);
    }
    /* Control with the 16-bit form even for a small length. */
    buf[0] = 0x89; buf[1] = 0xFE; buf[2] = 0; buf[3] = 5;
    CHECK(expect_error(1000, 1, buf, 4, 1002));
    /* Unmasked client frames, data and control. */
    n = put_frame(buf, 0, 1, WS_OP_TEXT, "a", 1, 0);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 1, WS_OP_PING, "a", 1, 0);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "", 0, 0);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* Masked second fragment, unmasked third. */
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "a", 1, 1);
    n = put_frame(buf, n, 1, WS_OP_CONT, "b", 1, 0);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* Continuation without a message. */
    n = put_frame(buf, 0, 1, WS_OP_CONT, "a", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 0, WS_OP_CONT, "a", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 1, WS_OP_TEXT, "a", 1, 1);
    n = put_frame(buf, n, 1, WS_OP_CONT, "b", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* New data message while one is open. */
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "a", 1, 1);
    n = put_frame(buf, n, 1, WS_OP_TEXT, "b", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 0, WS_OP_BINARY, "a", 1, 1);
    n = put_frame(buf, n, 1, WS_OP_TEXT, "b", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "a", 1, 1);
    n = put_frame(buf, n, 0, WS_OP_BINARY, "b", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* The same after an interleaved ping. */
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "a", 1, 1);
    n = put_frame(buf, n, 1, WS_OP_PING, "", 0, 1);
    n = put_frame(buf, n, 1, WS_OP_TEXT, "b", 1, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
}

static void test_parser_close(void)
{
    static recs r;
    unsigned char buf[300], pl[200];
    unsigned code;
    size_t n;
    int all = 1;
    ws_event ev;
    size_t used;

    /* Every code 0..5999 in a close frame: valid ones give CLOSE. */
    for (code = 0; code < 6000; code++) {
        pl[0] = (unsigned char)(code >> 8);
        pl[1] = (unsigned char)code;
        n = put_frame(buf, 0, 1, WS_OP_CLOSE, pl, 2, 1);
        run(100, 1, buf, n, 0, &r);
        if (ws_close_code_valid(code)) {
            if (r.n != 1 || r.ev[0].type != WS_EV_CLOSE || r.ev[0].code != code
                || r.ev[0].len != 0) all = 0;
        }
        else if (r.n != 1 || r.ev[0].type != WS_EV_ERROR || r.ev[0].code != 1002) {
            all = 0;
        }
    }
    CHECK(all);
    /* Codes above 16 bits cannot be sent; 0xFFFF is invalid. */
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\xff\xff", 2, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* Empty close: 1005. */
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "", 0, 1);
    CHECK(one(100, 1, buf, n, &ev, &used) == WS_EV_CLOSE && ev.code == 1005 && ev.len == 0);
    /* One byte: 1002, whatever the byte (0x0C would read as code 3072 if
     * the missing second byte were taken as 0). */
    all = 1;
    for (code = 0; code < 256; code++) {
        pl[0] = (unsigned char)code;
        n = put_frame(buf, 0, 1, WS_OP_CLOSE, pl, 1, 1);
        run(100, 1, buf, n, 0, &r);
        if (r.n != 1 || r.ev[0].type != WS_EV_ERROR || r.ev[0].code != 1002
            || !r.ev[0].reason || strcmp(r.ev[0].reason, "close payload of one byte") != 0) {
            all = 0;
        }
    }
    CHECK(all);
    /* Code and reason. */
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\x03\xe8" "bye \xce\xba", 8, 1);
    CHECK(one(100, 1, buf, n, &ev, &used) == WS_EV_CLOSE);
    CHECK(ev.code == 1000 && ev.len == 6 && memcmp(ev.data, "bye \xce\xba", 6) == 0);
    CHECK(ev.reason && strcmp(ev.reason, "bye \xce\xba") == 0);
    CHECK(used == n);
    /* Reason not UTF-8: 1007. */
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\x03\xe8" "bad\xff", 6, 1);
    CHECK(expect_error(100, 1, buf, n, 1007));
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\x03\xe8" "\xce", 3, 1);
    CHECK(expect_error(100, 1, buf, n, 1007));
    /* Invalid code and bad reason: the code wins (1002). */
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\x03\xed" "\xff", 3, 1);
    CHECK(expect_error(100, 1, buf, n, 1002));
    /* Maximal close: 2 + 123. */
    pl[0] = 0x0B; pl[1] = 0xB8;              /* 3000 */
    memset(pl + 2, 'z', 123);
    n = put_frame(buf, 0, 1, WS_OP_CLOSE, pl, 125, 1);
    CHECK(one(10, 1, buf, n, &ev, &used) == WS_EV_CLOSE && ev.code == 3000 && ev.len == 123);
    /* Close in the middle of a fragmented message. */
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "half", 4, 1);
    n = put_frame(buf, n, 1, WS_OP_CLOSE, "\x03\xe9", 2, 1);
    CHECK(run_all(100, 1, buf, n, &r) && r.n == 1 && r.ev[0].type == WS_EV_CLOSE
          && r.ev[0].code == 1001);
    /* Round trip through ws_close_payload. */
    {
        unsigned char cp[WS_MAX_CONTROL];
        size_t cl = ws_close_payload(cp, 4321, "going \xe2\x82\xac");
        n = put_frame(buf, 0, 1, WS_OP_CLOSE, cp, cl, 1);
        CHECK(one(100, 1, buf, n, &ev, &used) == WS_EV_CLOSE && ev.code == 4321
              && ev.len == 9 && memcmp(ev.data, "going \xe2\x82\xac", 9) == 0);
    }

    /* Finished: further feeds consume nothing and repeat the event. */
    {
        ws_parser *p = ws_parser_create(100, 1);
        n = put_frame(buf, 0, 1, WS_OP_CLOSE, "\x03\xe8", 2, 1);
        n = put_frame(buf, n, 1, WS_OP_TEXT, "after", 5, 1);
        CHECK(ws_parser_feed(p, buf, n, &used, &ev) == WS_EV_CLOSE && used == 8);
        CHECK(ws_parser_feed(p, buf + used, n - used, &used, &ev) == WS_EV_CLOSE);
        CHECK(used == 0 && ev.code == 1000);
        CHECK(ws_parser_feed(p, NULL, 0, &used, &ev) == WS_EV_CLOSE && used == 0);
        ws_parser_destroy(p);

        p = ws_parser_create(100, 1);
        buf[0] = 0xC1; buf[1] = 0x80;
        CHECK(ws_parser_feed(p, buf, 6, &used, &ev) == WS_EV_ERROR && ev.code == 1002);
        CHECK(used <= 6);
        CHECK(ws_parser_feed(p, buf, 6, &used, &ev) == WS_EV_ERROR && used == 0
              && ev.code == 1002 && ev.reason != NULL);
        ws_parser_destroy(p);
    }
}

/* A long mixed stream, fed in every way: the events must be identical. */
static void test_parser_stream(void)
{
    static recs whole, other;
    size_t n = 0, i;
    int all = 1;
    unsigned seed;

    rng_state = 777;
    for (i = 0; i < 150; i++) {
        unsigned kind = rnd() % 7;
        size_t len = rnd() % (i % 10 == 0 ? 3000 : 60);
        size_t k;
        unsigned char pl[3000];
        for (k = 0; k < len; k++) pl[k] = (unsigned char)('a' + k % 26);
        switch (kind) {
        case 0:
            n = put_frame(big, n, 1, WS_OP_TEXT, pl, len, 1);
            break;
        case 1:
            for (k = 0; k < len; k++) pl[k] = (unsigned char)rnd();
            n = put_frame(big, n, 1, WS_OP_BINARY, pl, len, 1);
            break;
        case 2:
            n = put_frame(big, n, 1, WS_OP_PING, pl, len % 126, 1);
            break;
        case 3:
            n = put_frame(big, n, 1, WS_OP_PONG, pl, len % 126, 1);
            break;
        default:
            /* Fragmented text of multibyte characters with a ping inside. */
            for (k = 0; k + 2 <= len; k += 2) memcpy(pl + k, "\xc3\xa9", 2);
            len &= ~(size_t)1;
            n = put_frame(big, n, 0, WS_OP_TEXT, pl, len / 3, 1);
            n = put_frame(big, n, 1, WS_OP_PING, "in", 2, 1);
            n = put_frame(big, n, 0, WS_OP_CONT, pl + len / 3, len / 3, 1);
            n = put_frame(big, n, 1, WS_OP_CONT, pl + 2 * (len / 3), len - 2 * (len / 3), 1);
            break;
        }
    }
    n = put_frame(big, n, 1, WS_OP_CLOSE, "\x03\xe8" "done", 6, 1);
    n = put_frame(big, n, 1, WS_OP_TEXT, "ignored", 7, 1);

    run(4096, 1, big, n, 0, &whole);
    CHECK(whole.n > 150);
    CHECK(whole.ev[whole.n - 1].type == WS_EV_CLOSE && whole.ev[whole.n - 1].code == 1000);
    CHECK(whole.consumed == n - 13);
    run(4096, 1, big, n, 1, &other);
    CHECK(recs_equal(&whole, &other));
    for (seed = 2; seed < 40; seed++) {
        run(4096, 1, big, n, seed, &other);
        if (!recs_equal(&whole, &other)) all = 0;
    }
    CHECK(all);
    /* No error anywhere before the close. */
    all = 1;
    for (i = 0; i < (size_t)whole.n; i++) {
        if (whole.ev[i].type == WS_EV_ERROR) all = 0;
    }
    CHECK(all);
}

/* Event data stays valid until the next feed even while fragments arrive. */
static void test_parser_data_lifetime(void)
{
    ws_parser *p = ws_parser_create(1000, 1);
    unsigned char buf[200];
    ws_event ev, ev2;
    size_t used, n;

    n = put_frame(buf, 0, 1, WS_OP_TEXT, "first", 5, 1);
    CHECK(ws_parser_feed(p, buf, n, &used, &ev) == WS_EV_MESSAGE);
    CHECK(memcmp(ev.data, "first", 5) == 0);
    /* A new fragmented message: the ping in between does not disturb it. */
    n = put_frame(buf, 0, 0, WS_OP_TEXT, "sec", 3, 1);
    n = put_frame(buf, n, 1, WS_OP_PING, "pp", 2, 1);
    n = put_frame(buf, n, 1, WS_OP_CONT, "ond", 3, 1);
    CHECK(ws_parser_feed(p, buf, n, &used, &ev) == WS_EV_PING);
    CHECK(ev.len == 2 && memcmp(ev.data, "pp", 2) == 0);
    CHECK(ws_parser_feed(p, buf + used, n - used, &used, &ev2) == WS_EV_MESSAGE);
    CHECK(ev2.len == 6 && memcmp(ev2.data, "second", 6) == 0);
    ws_parser_destroy(p);
}

int main(void)
{
    test_utf8();
    test_mask();
    test_frame_header();
    test_close_helpers();
    test_parser_basic();
    test_parser_lengths();
    test_parser_fragments();
    test_parser_errors();
    test_parser_close();
    test_parser_stream();
    test_parser_data_lifetime();
    one_cleanup();
    return UNIT_DONE("test_codec");
}
