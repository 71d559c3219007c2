/* fallback.h -- the requests of the HTTP fallback transports.
 *
 * docs/PROTOCOL.md, "The HTTP fallback transports": a down GET becomes a
 * response of events that the session's keeper writes (after the headers
 * sent here); an up POST's records go to the keeper, whose count is the
 * answer.  mod_websession.c finds the session; this file reads and checks
 * the requests and writes the answers.
 *
 * Contract:
 *  - ws_fallback_parse() checks a request that has WebSession-Transport and
 *    fills *req.  On a bad request it has answered already (400 or 405,
 *    with WebSession-Error) and returns that status's OK; else DECLINED.
 *  - ws_fallback_start() sends the 200 headers of a down response (the
 *    session id too for a new session); the body is the keeper's.
 *  - ws_fallback_read_post() reads a POST's whole body (at most
 *    IPC_MAX_POST bytes for the session's window) into req, before the
 *    keeper is contacted: a client that sends its body slowly holds only
 *    its own worker thread, never the session.  It returns DECLINED when
 *    the body is in req; else it has answered (413 too-large) and returns
 *    OK, or returns httpd's status for a body that could not be read.
 *  - ws_fallback_post() sends that body to the keeper on keeper_fd, which
 *    has accepted the HELLO, and answers the client; keeper_fd is closed.
 *  - ws_fallback_stale() answers a down request whose resume point the
 *    keeper found below the client's acknowledged count (IPC_ERR_STALE to
 *    its HELLO): 409 stale-request, nothing else happens.
 */
#ifndef WS_FALLBACK_H
#define WS_FALLBACK_H

#include "httpd.h"

typedef struct {
    int down;                   /* GET: the down stream; else a POST */
    apr_uint32_t flags;         /* down: IPC_ATTACH_SSE or _POLL (| _OPEN) */
    apr_uint64_t received;      /* down: WebSession-Received */
    apr_uint64_t sequence;      /* up: WebSession-Sequence */
    char *body;                 /* up: room for the IPC header, then the body */
    apr_size_t body_len;        /* up: of all that */
} ws_fallback_req;

/* Answer status, WebSession-Error token and text, as the module's other
 * refusals (mod_websession.c). */
typedef int (*ws_respond_fn)(request_rec *r, int status, const char *error,
                             const char *text);

int ws_fallback_parse(request_rec *r, ws_fallback_req *req, ws_respond_fn respond);
void ws_fallback_start(request_rec *r, const char *id);
int ws_fallback_read_post(request_rec *r, ws_fallback_req *req, apr_size_t max,
                          ws_respond_fn respond);
int ws_fallback_post(request_rec *r, const ws_fallback_req *req, int keeper_fd,
                     const char *fp, ws_respond_fn respond);
int ws_fallback_stale(request_rec *r, apr_uint64_t received, apr_uint64_t acked,
                      const char *fp, ws_respond_fn respond);

#endif /* WS_FALLBACK_H */
