/* test_ipc_reader.c -- unit tests for ipc_reader.c: messages from pieces of
 * any size, the bounds on kind and length, nothing read past a message. */

#include <stdlib.h>
#include <string.h>

#include "ipc_reader.h"
#include "unit.h"

static const ipcr_rule greeting[] = {
    { IPC_HELLO, 24, 24 },
    { IPC_LOGFD, 0, 0 },
};
static const ipcr_rule request[] = {
    { IPC_POST, 8, 1000 },
    { IPC_ATTACH, 16, 16 + 64 },
};

/* A message on the wire: header and body. */
static size_t wire(unsigned char *out, uint32_t magic, uint32_t kind,
                   const void *body, uint32_t len)
{
    ipc_header h = { magic, kind, len };

    memcpy(out, &h, sizeof(h));
    memcpy(out + sizeof(h), body, len);
    return sizeof(h) + len;
}

/* Feed w in pieces of at most step bytes, never more than asked for;
 * returns the final state and the bytes taken. */
static ipcr_state feed(ipc_reader *r, const unsigned char *w, size_t n, size_t step,
                       size_t *taken)
{
    ipcr_state st = IPCR_MORE;

    *taken = 0;
    while (st == IPCR_MORE && *taken < n) {
        size_t k = ipcr_need(r);

        if (k > step) {
            k = step;
        }
        if (k > n - *taken) {
            k = n - *taken;
        }
        st = ipcr_feed(r, w + *taken, k);
        *taken += k;
    }
    return st;
}

static void test_pieces(void)
{
    unsigned char w[2000], body[1000];
    ipc_reader r;
    size_t n, taken, step;
    int all = 1;

    for (n = 0; n < sizeof(body); n++) {
        body[n] = (unsigned char)(n * 7);
    }
    ipcr_init(&r);
    for (step = 1; step <= 40; step++) {
        /* a POST, then stream bytes that must not be taken */
        n = wire(w, IPC_MAGIC, IPC_POST, body, 500);
        memset(w + n, 'S', 100);
        ipcr_expect(&r, request, 2);
        if (feed(&r, w, n + 100, step, &taken) != IPCR_DONE || taken != n
            || r.h.kind != IPC_POST || r.h.len != 500 || memcmp(r.body, body, 500) != 0
            || ipcr_need(&r) != 0) {
            all = 0;
        }
    }
    CHECK(all);
    /* One piece holding the whole message. */
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_HELLO, body, 24);
    CHECK(ipcr_need(&r) == sizeof(ipc_header));
    CHECK(ipcr_feed(&r, w, sizeof(ipc_header)) == IPCR_MORE);
    CHECK(ipcr_need(&r) == 24);
    CHECK(ipcr_feed(&r, w + sizeof(ipc_header), 24) == IPCR_DONE);
    CHECK(r.h.kind == IPC_HELLO && memcmp(r.body, body, 24) == 0);
    /* A message without a body is whole with its header. */
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_LOGFD, body, 0);
    CHECK(feed(&r, w, n, 5, &taken) == IPCR_DONE && taken == n && r.body == NULL);
    CHECK(ipcr_need(&r) == 0);
    /* After a message, feeding is refused without changing it. */
    CHECK(ipcr_feed(&r, w, 1) == IPCR_DONE && r.h.kind == IPC_LOGFD);
    ipcr_free(&r);
}

static void test_refusals(void)
{
    unsigned char w[2000], body[1100];
    ipc_reader r;
    size_t n, taken;

    memset(body, 'b', sizeof(body));
    ipcr_init(&r);
    /* wrong magic: refused with the header, before any body */
    ipcr_expect(&r, greeting, 2);
    n = wire(w, 0x12345678, IPC_HELLO, body, 24);
    CHECK(feed(&r, w, n, 1, &taken) == IPCR_ERROR && taken == sizeof(ipc_header));
    CHECK(r.error && strstr(r.error, "magic") && r.body == NULL);
    CHECK(ipcr_need(&r) == 0);
    /* a kind not expected now: a POST before the HELLO */
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_POST, body, 8);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && taken == sizeof(ipc_header));
    CHECK(r.error && strstr(r.error, "not expected"));
    /* ... and a LOGFD (no body) after the HELLO */
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_LOGFD, body, 0);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && strstr(r.error, "not expected"));
    /* lengths outside the kind's bounds, either way */
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_HELLO, body, 23);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && strstr(r.error, "length"));
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_HELLO, body, 25);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && strstr(r.error, "length"));
    ipcr_expect(&r, greeting, 2);
    n = wire(w, IPC_MAGIC, IPC_LOGFD, body, 1);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR);
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_POST, body, 1001);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && taken == sizeof(ipc_header)
          && r.body == NULL);
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_POST, body, 7);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR);
    /* a huge length is refused, not allocated */
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_POST, body, 0);
    ((ipc_header *)w)->len = 0xFFFFFFFFu;
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR && r.body == NULL);
    /* at the bounds exactly: taken */
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_POST, body, 1000);
    CHECK(feed(&r, w, n, 300, &taken) == IPCR_DONE && r.h.len == 1000);
    ipcr_expect(&r, request, 2);
    n = wire(w, IPC_MAGIC, IPC_ATTACH, body, 16);
    CHECK(feed(&r, w, n, 300, &taken) == IPCR_DONE && r.h.len == 16);
    /* feeding more than it needs is an error, not an overflow */
    ipcr_expect(&r, greeting, 2);
    CHECK(ipcr_feed(&r, w, sizeof(ipc_header) + 1) == IPCR_ERROR);
    /* no rules: nothing is expected */
    ipcr_expect(&r, NULL, 0);
    n = wire(w, IPC_MAGIC, IPC_HELLO, body, 24);
    CHECK(feed(&r, w, n, 100, &taken) == IPCR_ERROR);
    ipcr_free(&r);
}

int main(void)
{
    test_pieces();
    test_refusals();
    return UNIT_DONE("test_ipc_reader");
}
