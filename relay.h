/* relay.h -- giving the client connection to a keeper after the 101.
 *
 * Contract:
 *  - ws_handover() is called by the handler once the 101 response is
 *    flushed and the keeper has said yes on keeper_fd.  Bytes httpd's input
 *    filters already hold are read without blocking and sent first.
 *  - Plain TCP: the client socket itself travels to the keeper (SCM_RIGHTS)
 *    and the connection is marked aborted, so httpd closes only its own
 *    descriptor, without shutdown(): the worker thread is free at once.
 *  - TLS or any other filtered connection: the worker relays the decrypted
 *    byte stream between httpd's filters and keeper_fd until either side
 *    ends; it never blocks one direction on the other.
 *  - More than IPC_MAX_PREREAD bytes waiting there: none of them goes
 *    anywhere, the client gets a close frame 1008 (on the HTTP fallback's
 *    stream, the close event) and httpd closes the connection; the session
 *    is not touched (docs/PROTOCOL.md, "Too much right behind the
 *    handshake").
 *  - keeper_fd is closed in every case.  Returns APR_SUCCESS or the error
 *    that ended the transfer (already logged).
 *  - flags are added to the attach (IPC_ATTACH_V1, the HTTP fallback's
 *    IPC_ATTACH_SSE/_POLL/_OPEN), and received is the fallback client's
 *    resume point (0 otherwise).
 */
#ifndef WS_RELAY_H
#define WS_RELAY_H

#include "httpd.h"

/* Will ws_handover relay this connection (TLS, an HTTP/2 stream), holding
 * the worker thread for as long as it lasts? */
int ws_relay_needed(const conn_rec *c);

apr_status_t ws_handover(request_rec *r, int keeper_fd, apr_uint32_t flags,
                         apr_uint64_t received, const char *fingerprint);

#endif /* WS_RELAY_H */
