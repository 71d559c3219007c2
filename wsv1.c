/* wsv1.c -- parsing websession.v1 messages. */

#include <string.h>

#include "wsv1.h"

/* Decimal number filling p[0..len): 1-20 digits, no leading zero. */
int wsv1_number(const unsigned char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 20 || (p[0] == '0' && len > 1)) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10) {
            return 0;
        }
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 1;
}

static wsv1_type bad(wsv1_msg *m, const char *why)
{
    m->type = WSV1_BAD;
    m->error = why;
    return WSV1_BAD;
}

wsv1_type wsv1_parse(const unsigned char *p, size_t len, int binary, wsv1_msg *m)
{
    memset(m, 0, sizeof(*m));
    if (len == 0) {
        return bad(m, "websession.v1: empty message");
    }
    if (p[0] == 'D') {
        m->type = WSV1_DATA;
        m->payload = p + 1;
        m->len = len - 1;
        return m->type;
    }
    if (binary) {
        return bad(m, "websession.v1: binary frames carry data only");
    }
    if (p[0] == 'C') {           /* not limited to a control frame's 125 bytes */
        const unsigned char *sp = memchr(p + 1, ' ', len - 1);
        size_t nlen = sp ? (size_t)(sp - p - 1) : len - 1;

        if (!wsv1_number(p + 1, nlen, &m->n)
            || !(m->n == 1000 || (m->n >= 3000 && m->n <= 4999))) {
            return bad(m, "websession.v1: bad close (C<code>: 1000 or 3000-4999)");
        }
        if (sp && len - nlen - 2 > 123) {
            return bad(m, "websession.v1: close reason longer than 123 bytes");
        }
        m->type = WSV1_CLOSE;
        m->payload = sp ? sp + 1 : p + len;
        m->len = sp ? len - nlen - 2 : 0;
        return m->type;
    }
    if (len > 125) {
        return bad(m, "websession.v1: control message too long");
    }
    switch (p[0]) {
    case 'A':
        if (!wsv1_number(p + 1, len - 1, &m->n)) {
            return bad(m, "websession.v1: bad acknowledgement");
        }
        m->type = WSV1_ACK;
        return m->type;
    case 'R': {
        const unsigned char *sp = memchr(p + 1, ' ', len - 1);
        size_t nlen = sp ? (size_t)(sp - p - 1) : len - 1;

        if (!wsv1_number(p + 1, nlen, &m->n)
            || (sp && !wsv1_number(sp + 1, len - nlen - 2, &m->window))) {
            return bad(m, "websession.v1: bad resume point");
        }
        m->has_window = sp != NULL;
        m->type = WSV1_RESUME;
        return m->type;
    }
    case 'P':
        if (len != 1) {
            return bad(m, "websession.v1: bad heartbeat");
        }
        m->type = WSV1_PING;
        return m->type;
    case 'I':
        if (len < 2) {
            return bad(m, "websession.v1: empty session id");
        }
        m->type = WSV1_ID;
        m->payload = p + 1;
        m->len = len - 1;
        return m->type;
    default:
        return bad(m, "websession.v1: unknown message type");
    }
}
