/* ws_codec.c -- RFC 6455 frame parser and encoders, server side, no I/O.
 *
 * The parser is a small state machine: it gathers a frame header (in stages
 * so that a bad length is refused as soon as it is known), then the payload.
 * Data frames are unmasked straight into the message buffer, which grows
 * geometrically but never beyond max_message; control frames go to a fixed
 * buffer so they may arrive between the fragments of a message.  Text is
 * validated as it arrives with an incremental UTF-8 automaton.
 */

#include "ws_codec.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---------------------------------------------------------------
 *
 * Byte classes:
 *   0 00..7F   1 80..8F   2 90..9F   3 A0..BF
 *   4 C0..C1, F5..FF (never valid)   5 C2..DF
 *   6 E0   7 E1..EC, EE..EF   8 ED   9 F0   10 F1..F3   11 F4
 * States (0 and 1 are WS_UTF8_ACCEPT / WS_UTF8_REJECT):
 *   2 one continuation byte left      3 two left      4 three left
 *   5 after E0 (next A0..BF: no overlong three-byte forms)
 *   6 after ED (next 80..9F: no surrogates)
 *   7 after F0 (next 90..BF: no overlong four-byte forms)
 *   8 after F4 (next 80..8F: nothing above U+10FFFF)
 */
#define U8_C16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c

static const unsigned char utf8_class[256] = {
    U8_C16(0), U8_C16(0), U8_C16(0), U8_C16(0),     /* 00..3F */
    U8_C16(0), U8_C16(0), U8_C16(0), U8_C16(0),     /* 40..7F */
    U8_C16(1),                                      /* 80..8F */
    U8_C16(2),                                      /* 90..9F */
    U8_C16(3), U8_C16(3),                           /* A0..BF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* C0..CF */
    U8_C16(5),                                      /* D0..DF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, /* E0..EF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4 /* F0..FF */
};

static const unsigned char utf8_next[9][12] = {
    /*        0  1  2  3  4  5  6  7  8  9 10 11 */
    /* 0 */ { 0, 1, 1, 1, 1, 2, 5, 3, 6, 7, 4, 8 },
    /* 1 */ { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 2 */ { 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 3 */ { 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 4 */ { 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 5 */ { 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 6 */ { 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 7 */ { 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 },
    /* 8 */ { 1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
};

#define ASCII_MASK64 UINT64_C(0x8080808080808080)

uint32_t ws_utf8_step(uint32_t state, const unsigned char *s, size_t n)
{
    size_t i = 0;

    if (state > 8) {
        return WS_UTF8_REJECT;
    }
    while (i < n) {
        if (state == WS_UTF8_ACCEPT) {
            /* Skip runs of ASCII eight bytes at a time. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & ASCII_MASK64) {
                    break;
                }
                i += 8;
            }
            while (i < n && s[i] < 0x80) {
                i++;
            }
            if (i == n) {
                break;
            }
        }
        state = utf8_next[state][utf8_class[s[i]]];
        if (state == WS_UTF8_REJECT) {
            return WS_UTF8_REJECT;
        }
        i++;
    }
    return state;
}

int ws_utf8_valid(const unsigned char *s, size_t n)
{
    return ws_utf8_step(WS_UTF8_ACCEPT, s, n) == WS_UTF8_ACCEPT;
}

/* ---- masking ------------------------------------------------------------ */

void ws_mask(unsigned char *buf, size_t len, const unsigned char mask[4],
             uint64_t offset)
{
    unsigned char m[8];
    unsigned k = (unsigned)(offset & 3);
    size_t i = 0;
    int j;

    /* The mask as seen from buf[0], twice, for whole-word XORs. */
    for (j = 0; j < 8; j++) {
        m[j] = mask[(k + (unsigned)j) & 3];
    }
    if (len >= 8) {
        uint64_t m64;
        memcpy(&m64, m, 8);
        for (; len - i >= 32; i += 32) {
            uint64_t a, b, c, d;
            memcpy(&a, buf + i, 8);
            memcpy(&b, buf + i + 8, 8);
            memcpy(&c, buf + i + 16, 8);
            memcpy(&d, buf + i + 24, 8);
            a ^= m64; b ^= m64; c ^= m64; d ^= m64;
            memcpy(buf + i, &a, 8);
            memcpy(buf + i + 8, &b, 8);
            memcpy(buf + i + 16, &c, 8);
            memcpy(buf + i + 24, &d, 8);
        }
        for (; len - i >= 8; i += 8) {
            uint64_t a;
            memcpy(&a, buf + i, 8);
            a ^= m64;
            memcpy(buf + i, &a, 8);
        }
    }
    for (; i < len; i++) {
        buf[i] ^= m[i & 3];
    }
}

/* ---- encoders ----------------------------------------------------------- */

size_t ws_frame_header(unsigned char out[WS_MAX_HEADER], int fin, int opcode,
                       uint64_t len, const unsigned char *mask)
{
    size_t n;
    unsigned char mbit = mask ? 0x80 : 0x00;

    out[0] = (unsigned char)((fin ? 0x80 : 0x00) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (unsigned char)(mbit | len);
        n = 2;
    }
    else if (len <= 0xFFFF) {
        out[1] = (unsigned char)(mbit | 126);
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        n = 4;
    }
    else {
        int i;
        out[1] = (unsigned char)(mbit | 127);
        for (i = 0; i < 8; i++) {
            out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        }
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

int ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003)
        || (code >= 1007 && code <= 1014)
        || (code >= 3000 && code <= 4999);
}

size_t ws_close_payload(unsigned char out[WS_MAX_CONTROL], unsigned code,
                        const char *reason)
{
    size_t keep = 0;

    /* A code that may not go on the wire (1005, 1006, ...) means "no
     * status": send an empty close payload instead of an illegal one. */
    if (!ws_close_code_valid(code)) {
        return 0;
    }
    out[0] = (unsigned char)(code >> 8);
    out[1] = (unsigned char)code;
    if (reason) {
        const unsigned char *r = (const unsigned char *)reason;
        size_t max = WS_MAX_CONTROL - 2, i;
        uint32_t st = WS_UTF8_ACCEPT;

        /* Longest prefix that fits and ends on a character boundary; stop
         * at the first byte that is not valid UTF-8. */
        for (i = 0; i < max && r[i]; i++) {
            st = ws_utf8_step(st, r + i, 1);
            if (st == WS_UTF8_REJECT) {
                break;
            }
            if (st == WS_UTF8_ACCEPT) {
                keep = i + 1;
            }
        }
        memcpy(out + 2, r, keep);
    }
    return 2 + keep;
}

/* ---- parser ------------------------------------------------------------- */

typedef enum {
    ST_HEADER = 0,
    ST_PAYLOAD,
    ST_DONE
} parser_state;

struct ws_parser {
    size_t max_message;
    int require_mask;
    parser_state state;

    /* Frame header being gathered: hdr_need grows by stage. */
    unsigned char hdr[WS_MAX_HEADER];
    unsigned hdr_have;
    unsigned hdr_need;
    int hdr_stage;              /* 0: first two bytes, 1: length, 2: mask */

    /* Current frame. */
    int fin;
    int opcode;
    int masked;
    unsigned char mask[4];
    uint64_t plen;              /* payload length */
    uint64_t pgot;              /* payload bytes seen */

    /* Message being assembled from data frames. */
    unsigned char *msg;
    size_t msg_len;
    size_t msg_cap;
    int msg_open;               /* a first fragment without FIN was seen */
    int msg_binary;
    int msg_reset;              /* a message was delivered; drop it next feed */
    uint32_t utf8;

    /* Control frame payload, NUL-terminated for close reasons. */
    unsigned char ctl[WS_MAX_CONTROL + 1];

    /* The final event, repeated after CLOSE or ERROR. */
    ws_event final;
};

ws_parser *ws_parser_create(size_t max_message, int require_mask)
{
    ws_parser *p;

    if (max_message == 0) {
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->max_message = max_message;
    p->require_mask = require_mask ? 1 : 0;
    p->state = ST_HEADER;
    p->hdr_need = 2;
    p->utf8 = WS_UTF8_ACCEPT;
    return p;
}

void ws_parser_destroy(ws_parser *p)
{
    if (p) {
        free(p->msg);
        free(p);
    }
}

static ws_event_type parser_fail(ws_parser *p, ws_event *ev, unsigned code,
                                 const char *reason)
{
    p->state = ST_DONE;
    memset(&p->final, 0, sizeof(p->final));
    p->final.type = WS_EV_ERROR;
    p->final.code = code;
    p->final.reason = reason;
    *ev = p->final;
    return WS_EV_ERROR;
}

/* Checks on the first two header bytes; sets how many more are needed.
 * Returns NULL or an error reason (*code set). */
static const char *check_base_header(ws_parser *p, unsigned *code)
{
    unsigned char b0 = p->hdr[0], b1 = p->hdr[1];
    unsigned len7 = b1 & 0x7F;
    int control;

    *code = WS_CLOSE_PROTOCOL;
    p->fin = (b0 & 0x80) != 0;
    p->opcode = b0 & 0x0F;
    p->masked = (b1 & 0x80) != 0;

    if (b0 & 0x70) {
        return "reserved bits set";
    }
    switch (p->opcode) {
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        control = 0;
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        control = 1;
        break;
    default:
        return "unknown opcode";
    }
    if (p->require_mask && !p->masked) {
        return "unmasked client frame";
    }
    if (control) {
        if (!p->fin) {
            return "fragmented control frame";
        }
        if (len7 > WS_MAX_CONTROL) {
            return "control frame over 125 bytes";
        }
    }
    else if (p->opcode == WS_OP_CONT) {
        if (!p->msg_open) {
            return "continuation without a message";
        }
    }
    else if (p->msg_open) {
        return "new message inside a fragmented message";
    }

    p->plen = len7;
    if (len7 == 126) {
        p->hdr_need = 4;
        p->hdr_stage = 1;
    }
    else if (len7 == 127) {
        p->hdr_need = 10;
        p->hdr_stage = 1;
    }
    else {
        p->hdr_stage = 2;
    }
    return NULL;
}

/* Checks on the complete length, for the 16 and 64-bit forms. */
static const char *check_ext_length(ws_parser *p, unsigned *code)
{
    if (p->hdr_need == 4) {
        p->plen = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
    }
    else {
        uint64_t v = 0;
        int i;
        for (i = 2; i < 10; i++) {
            v = (v << 8) | p->hdr[i];
        }
        if (v >> 63) {
            *code = WS_CLOSE_PROTOCOL;
            return "64-bit length with the top bit set";
        }
        p->plen = v;
    }
    return NULL;
}

/* Grows the message buffer to hold at least need bytes (need <= max_message). */
static int msg_reserve(ws_parser *p, size_t need)
{
    size_t cap;
    unsigned char *m;

    if (need <= p->msg_cap) {
        return 1;
    }
    cap = p->msg_cap < 512 ? 1024 : p->msg_cap * 2;
    if (cap < need) {
        cap = need;
    }
    if (cap > p->max_message) {
        cap = p->max_message;
    }
    m = realloc(p->msg, cap);
    if (!m) {
        return 0;
    }
    p->msg = m;
    p->msg_cap = cap;
    return 1;
}

static ws_event_type control_done(ws_parser *p, ws_event *ev)
{
    size_t n = (size_t)p->plen;

    p->ctl[n] = 0;
    if (p->opcode == WS_OP_PING || p->opcode == WS_OP_PONG) {
        ev->type = p->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
        ev->data = p->ctl;
        ev->len = n;
        return ev->type;
    }

    /* Close. */
    if (n == 1) {
        return parser_fail(p, ev, WS_CLOSE_PROTOCOL, "close payload of one byte");
    }
    memset(&p->final, 0, sizeof(p->final));
    p->final.type = WS_EV_CLOSE;
    if (n == 0) {
        p->final.code = WS_CLOSE_NO_STATUS;
        p->final.data = p->ctl;
        p->final.reason = (const char *)p->ctl;
    }
    else {
        unsigned code = ((unsigned)p->ctl[0] << 8) | p->ctl[1];
        if (!ws_close_code_valid(code)) {
            return parser_fail(p, ev, WS_CLOSE_PROTOCOL, "invalid close code");
        }
        if (!ws_utf8_valid(p->ctl + 2, n - 2)) {
            return parser_fail(p, ev, WS_CLOSE_INVALID_DATA,
                               "close reason is not UTF-8");
        }
        p->final.code = code;
        p->final.data = p->ctl + 2;
        p->final.len = n - 2;
        p->final.reason = (const char *)p->ctl + 2;
    }
    p->state = ST_DONE;
    *ev = p->final;
    return WS_EV_CLOSE;
}

ws_event_type ws_parser_feed(ws_parser *p, const unsigned char *buf, size_t len,
                             size_t *used, ws_event *ev)
{
    size_t pos = 0;
    const char *why;
    unsigned code;

    memset(ev, 0, sizeof(*ev));
    if (p->state == ST_DONE) {
        *used = 0;
        *ev = p->final;
        return ev->type;
    }
    if (p->msg_reset) {
        p->msg_reset = 0;
        p->msg_len = 0;
    }

    for (;;) {
        if (p->state == ST_HEADER) {
            size_t n = p->hdr_need - p->hdr_have;
            if (n > len - pos) {
                n = len - pos;
            }
            if (n) {
                memcpy(p->hdr + p->hdr_have, buf + pos, n);
            }
            p->hdr_have += (unsigned)n;
            pos += n;
            if (p->hdr_have < p->hdr_need) {
                *used = pos;
                return WS_EV_NEED_MORE;
            }
            if (p->hdr_stage == 0) {
                why = check_base_header(p, &code);
            }
            else if (p->hdr_stage == 1) {
                why = check_ext_length(p, &code);
                p->hdr_stage = 2;
            }
            else {
                why = NULL;
            }
            if (why) {
                *used = pos;
                return parser_fail(p, ev, code, why);
            }
            if (p->hdr_stage == 1) {
                continue;               /* extended length to come */
            }
            if (p->hdr_stage == 2) {
                /* Length known: refuse an oversized message before any
                 * payload arrives. */
                if (p->opcode < WS_OP_CLOSE
                    && p->plen > (uint64_t)(p->max_message - p->msg_len)) {
                    *used = pos;
                    return parser_fail(p, ev, WS_CLOSE_TOO_BIG,
                                       "message over the size limit");
                }
                if (p->masked) {
                    p->hdr_need += 4;
                    p->hdr_stage = 3;
                    continue;
                }
            }
            else {
                memcpy(p->mask, p->hdr + p->hdr_need - 4, 4);
            }
            /* Header complete. */
            p->state = ST_PAYLOAD;
            p->pgot = 0;
            p->hdr_have = 0;
            p->hdr_need = 2;
            p->hdr_stage = 0;
            if (p->opcode == WS_OP_TEXT || p->opcode == WS_OP_BINARY) {
                p->msg_open = 1;
                p->msg_binary = p->opcode == WS_OP_BINARY;
                p->utf8 = WS_UTF8_ACCEPT;
            }
        }

        /* ST_PAYLOAD */
        {
            uint64_t left = p->plen - p->pgot;
            size_t n = len - pos;

            if ((uint64_t)n > left) {
                n = (size_t)left;
            }
            if (p->opcode >= WS_OP_CLOSE) {
                unsigned char *dst = p->ctl + p->pgot;
                if (n) {
                    memcpy(dst, buf + pos, n);
                }
                if (n && p->masked) {
                    ws_mask(dst, n, p->mask, p->pgot);
                }
                pos += n;
                p->pgot += n;
                if (p->pgot < p->plen) {
                    *used = pos;
                    return WS_EV_NEED_MORE;
                }
                p->state = ST_HEADER;
                *used = pos;
                return control_done(p, ev);
            }

            if (n) {
                unsigned char *dst;
                if (!msg_reserve(p, p->msg_len + n)) {
                    *used = pos;
                    return parser_fail(p, ev, WS_CLOSE_INTERNAL, "out of memory");
                }
                dst = p->msg + p->msg_len;
                memcpy(dst, buf + pos, n);
                if (p->masked) {
                    ws_mask(dst, n, p->mask, p->pgot);
                }
                pos += n;
                p->pgot += n;
                p->msg_len += n;
                if (!p->msg_binary) {
                    p->utf8 = ws_utf8_step(p->utf8, dst, n);
                    if (p->utf8 == WS_UTF8_REJECT) {
                        *used = pos;
                        return parser_fail(p, ev, WS_CLOSE_INVALID_DATA,
                                           "text message is not UTF-8");
                    }
                }
            }
            if (p->pgot < p->plen) {
                *used = pos;
                return WS_EV_NEED_MORE;
            }
            p->state = ST_HEADER;
            if (p->fin) {
                if (!p->msg_binary && p->utf8 != WS_UTF8_ACCEPT) {
                    *used = pos;
                    return parser_fail(p, ev, WS_CLOSE_INVALID_DATA,
                                       "text message ends inside a character");
                }
                p->msg_open = 0;
                p->msg_reset = 1;
                ev->type = WS_EV_MESSAGE;
                ev->binary = p->msg_binary;
                ev->data = p->msg ? p->msg : p->ctl;
                ev->len = p->msg_len;
                *used = pos;
                return WS_EV_MESSAGE;
            }
        }
    }
}
