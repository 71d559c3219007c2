/* ipc_reader.c -- an IPC message from pieces, with per-kind length bounds. */

#include "ipc_reader.h"

#include <stdlib.h>
#include <string.h>

void ipcr_init(ipc_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void ipcr_expect(ipc_reader *r, const ipcr_rule *rules, size_t nrules)
{
    free(r->body);
    ipcr_init(r);
    if (nrules > IPCR_MAX_RULES) {
        nrules = IPCR_MAX_RULES;
    }
    if (nrules) {
        memcpy(r->rules, rules, nrules * sizeof(*rules));
    }
    r->nrules = nrules;
}

size_t ipcr_need(const ipc_reader *r)
{
    if (r->state != IPCR_MORE) {
        return 0;
    }
    if (r->hgot < sizeof(r->hdr)) {
        return sizeof(r->hdr) - r->hgot;
    }
    return r->h.len - r->bgot;
}

static ipcr_state fail(ipc_reader *r, const char *why)
{
    r->error = why;
    return r->state = IPCR_ERROR;
}

/* The header is whole: check it against the rules, make room for the body. */
static ipcr_state header_done(ipc_reader *r)
{
    size_t i;

    memcpy(&r->h, r->hdr, sizeof(r->h));
    if (r->h.magic != IPC_MAGIC) {
        return fail(r, "not an IPC message (bad magic)");
    }
    for (i = 0; i < r->nrules; i++) {
        if (r->rules[i].kind == r->h.kind) {
            break;
        }
    }
    if (i == r->nrules) {
        return fail(r, "a message of a kind not expected here");
    }
    if (r->h.len < r->rules[i].min_len || r->h.len > r->rules[i].max_len) {
        return fail(r, "a message of a length not allowed for its kind");
    }
    if (r->h.len == 0) {
        return r->state = IPCR_DONE;
    }
    r->body = malloc(r->h.len);
    if (!r->body) {
        return fail(r, "out of memory");
    }
    return IPCR_MORE;
}

ipcr_state ipcr_feed(ipc_reader *r, const unsigned char *p, size_t n)
{
    if (r->state != IPCR_MORE || n > ipcr_need(r)) {
        return r->state == IPCR_MORE ? fail(r, "fed more than it needs") : r->state;
    }
    if (r->hgot < sizeof(r->hdr)) {
        memcpy(r->hdr + r->hgot, p, n);
        r->hgot += n;
        return r->hgot == sizeof(r->hdr) ? header_done(r) : IPCR_MORE;
    }
    memcpy(r->body + r->bgot, p, n);
    r->bgot += n;
    if (r->bgot == r->h.len) {
        r->state = IPCR_DONE;
    }
    return r->state;
}

void ipcr_free(ipc_reader *r)
{
    free(r->body);
    ipcr_init(r);
}
