/* ipc_reader.h -- one IPC message put together from a non-blocking
 * connection, no I/O.
 *
 * Contract:
 *  - The caller says which message kinds may come next and how long each
 *    may be (ipcr_expect); the reader takes the 12-byte header, then the
 *    body, from whatever pieces the connection yields.
 *  - ipcr_need() is how many bytes to read next: never more than the
 *    current message still lacks, so nothing that follows the message on
 *    the connection (a relayed byte stream after IPC_ATTACH) is taken.
 *  - A wrong magic, a kind not expected, or a length outside the kind's
 *    bounds is an error as soon as the header is whole: the body is never
 *    read, so a peer cannot make the reader hold more than the largest
 *    body the caller allowed.
 *  - Once a message is whole, its kind, body and length stay readable
 *    until ipcr_expect() is called for the next one or ipcr_free().
 */
#ifndef WS_IPC_READER_H
#define WS_IPC_READER_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

typedef struct {
    uint32_t kind;
    uint32_t min_len, max_len;
} ipcr_rule;

#define IPCR_MAX_RULES 4

typedef enum {
    IPCR_MORE = 0,              /* feed ipcr_need() more bytes */
    IPCR_DONE,                  /* the message is whole */
    IPCR_ERROR                  /* the peer broke the rules; why in r->error */
} ipcr_state;

typedef struct {
    ipcr_rule rules[IPCR_MAX_RULES];
    size_t nrules;
    unsigned char hdr[sizeof(ipc_header)];
    size_t hgot;
    ipc_header h;               /* valid once the header is whole */
    unsigned char *body;        /* h.len bytes (NULL when 0) */
    size_t bgot;
    ipcr_state state;
    const char *error;
} ipc_reader;

void ipcr_init(ipc_reader *r);
/* Forget the last message; the next must match one of rules. */
void ipcr_expect(ipc_reader *r, const ipcr_rule *rules, size_t nrules);
size_t ipcr_need(const ipc_reader *r);
/* Take n bytes (n <= ipcr_need()); returns the state after them. */
ipcr_state ipcr_feed(ipc_reader *r, const unsigned char *p, size_t n);
void ipcr_free(ipc_reader *r);

#endif /* WS_IPC_READER_H */
