/* relay.c -- hand the client socket to a keeper, or relay a TLS stream. */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_ssl.h"
#include "ap_mpm.h"
#include "util_filter.h"
#include "apr_buckets.h"

#include "bytebuf.h"
#include "ipc.h"
#include "relay.h"
#include "sse.h"
#include "ws_codec.h"
#include "wsv1.h"

APLOG_USE_MODULE(websession);

#define RELAY_CHUNK 65536
#define RELAY_TICK_MS 1000      /* how often an idle relay checks for a stop */
#define RELAY_OVERFLOW_REASON "more than 4 MiB sent right behind the handshake"

_Static_assert(IPC_MAX_PREREAD == 4u * 1024 * 1024, "RELAY_OVERFLOW_REASON names the limit");

/* Append whatever the input filters can give without blocking to out
 * (at most RELAY_CHUNK bytes).  Returns APR_SUCCESS (maybe nothing read),
 * APR_EOF when the client is gone, or an error. */
static apr_status_t read_available(conn_rec *c, apr_bucket_brigade *bb,
                                   char *out, apr_size_t *outlen)
{
    apr_status_t rv;
    apr_size_t want = RELAY_CHUNK - *outlen;

    if (want == 0) {
        return APR_SUCCESS;
    }
    apr_brigade_cleanup(bb);
    rv = ap_get_brigade(c->input_filters, bb, AP_MODE_READBYTES,
                        APR_NONBLOCK_READ, want);
    if (APR_STATUS_IS_EAGAIN(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    while (!APR_BRIGADE_EMPTY(bb)) {
        apr_bucket *e = APR_BRIGADE_FIRST(bb);
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_EOS(e)) {
            return APR_EOF;
        }
        rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (len > RELAY_CHUNK - *outlen) {
            len = RELAY_CHUNK - *outlen;    /* cannot happen: readbytes bounds it */
        }
        memcpy(out + *outlen, data, len);
        *outlen += len;
        apr_bucket_delete(e);
    }
    return APR_SUCCESS;
}

/* Everything the input filters hold or can read without blocking.  A
 * single READBYTES call may leave part of a bucket inside the core input
 * filter, and those bytes must not stay behind in httpd.  APR_ENOSPC when
 * that is more than an attach may carry (IPC_MAX_PREREAD). */
static apr_status_t drain_filters(request_rec *r, apr_bucket_brigade *bb,
                                  char **out, apr_size_t *outlen)
{
    apr_size_t cap = RELAY_CHUNK, len = 0;
    char *buf = apr_palloc(r->pool, sizeof(ipc_attach) + cap);
    apr_status_t rv;

    for (;;) {
        apr_size_t got = 0;
        char *chunk = apr_palloc(r->pool, RELAY_CHUNK);

        rv = read_available(r->connection, bb, chunk, &got);
        if (rv != APR_SUCCESS || got == 0) {
            break;
        }
        if (len + got > cap) {
            char *bigger;
            while (len + got > cap) {
                cap *= 2;
            }
            if (cap > IPC_MAX_PREREAD) {
                return APR_ENOSPC;
            }
            bigger = apr_palloc(r->pool, sizeof(ipc_attach) + cap);
            memcpy(bigger, buf, sizeof(ipc_attach) + len);
            buf = bigger;
        }
        memcpy(buf + sizeof(ipc_attach) + len, chunk, got);
        len += got;
    }
    *out = buf;
    *outlen = len;
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

/* The client sent more right behind the handshake than an attach may carry
 * (IPC_MAX_PREREAD): none of it reaches the session, and the client gets a
 * close frame 1008 on this connection (the close event on the HTTP
 * fallback's stream) instead of a reset.  The session is not touched. */
static void refuse_overflow(request_rec *r, apr_uint32_t flags, const char *fp)
{
    conn_rec *c = r->connection;
    unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, WS_CLOSE_POLICY, RELAY_OVERFLOW_REASON);
    size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    bytebuf out = { 0 };

    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "WS03005: [%s] the client sent more than %u bytes right behind the"
                  " handshake, before its session could take the connection: closed"
                  " with 1008, nothing delivered", fp, (unsigned)IPC_MAX_PREREAD);
    memcpy(f + h, pl, n);
    if (flags & IPC_ATTACH_HTTP) {
        sse_frame sf;

        sse_comment(&out, WSV1_PROTOCOL);
        sse_frame_whole(f, h + n, &sf);
        sse_encode(&out, &sf);
    }
    else {
        bytebuf_append(&out, f, h + n);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create((const char *)out.data + out.off,
                                                       bytebuf_pending(&out), NULL,
                                                       c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    ap_pass_brigade(c->output_filters, bb);
    apr_brigade_destroy(bb);
    bytebuf_free(&out);
}

/* IPC_ATTACH; body has room for the header before its prelen bytes. */
static apr_status_t send_attach(int keeper_fd, apr_uint32_t flags, apr_uint64_t received,
                                char *body, apr_size_t prelen, int pass_fd)
{
    ipc_attach a;

    memset(&a, 0, sizeof(a));
    a.flags = flags;
    a.received = received;
    a.preread_len = (uint32_t)prelen;
    memcpy(body, &a, sizeof(a));
    if (ipc_send_msg(keeper_fd, IPC_ATTACH, body, sizeof(a) + prelen, pass_fd) < 0) {
        return errno;
    }
    return APR_SUCCESS;
}

static apr_status_t relay(request_rec *r, int keeper_fd, const char *fp,
                          apr_bucket_brigade *bb)
{
    conn_rec *c = r->connection;
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t cfd;
    char *down = apr_palloc(r->pool, RELAY_CHUNK);
    char *pending = apr_palloc(r->pool, RELAY_CHUNK);
    apr_status_t rv = APR_SUCCESS;
    apr_size_t poff = 0, plen = 0;

    apr_os_sock_get(&cfd, csd);
    for (;;) {
        struct pollfd pf[2];
        int n_ready;

        /* client -> keeper: read only when the previous chunk is delivered */
        if (poff == plen) {
            poff = plen = 0;
            rv = read_available(c, bb, pending, &plen);
            if (rv != APR_SUCCESS) {
                break;
            }
        }
        while (poff < plen) {
            ssize_t n = send(keeper_fd, pending + poff, plen - poff,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    break;
                }
                return APR_SUCCESS;         /* the keeper let go */
            }
            poff += (apr_size_t)n;
        }
        if (poff == plen && plen) {
            continue;                       /* maybe more is buffered in the filters */
        }

        pf[0].fd = cfd;
        pf[0].events = poff == plen ? POLLIN : 0;
        pf[1].fd = keeper_fd;
        pf[1].events = POLLIN | (poff < plen ? POLLOUT : 0);
        n_ready = poll(pf, 2, RELAY_TICK_MS);
        if (n_ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            return APR_FROM_OS_ERROR(errno);
        }
        if (n_ready == 0) {
            int state = AP_MPMQ_RUNNING;

            ap_mpm_query(AP_MPMQ_MPM_STATE, &state);
            if (state == AP_MPMQ_STOPPING) {
                /* This child is going away (stop, restart, recycling): let
                 * go of the client, whose session stays with its keeper. */
                ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                              "WS03004: [%s] httpd child stopping; relay ends", fp);
                return APR_SUCCESS;
            }
            continue;
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(keeper_fd, down, RELAY_CHUNK, MSG_DONTWAIT);

            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                return APR_SUCCESS;         /* session over or evicted */
            }
            if (n > 0) {
                apr_bucket_brigade *ob = apr_brigade_create(r->pool, c->bucket_alloc);

                APR_BRIGADE_INSERT_TAIL(ob, apr_bucket_transient_create(
                                            down, (apr_size_t)n, c->bucket_alloc));
                APR_BRIGADE_INSERT_TAIL(ob, apr_bucket_flush_create(c->bucket_alloc));
                rv = ap_pass_brigade(c->output_filters, ob);
                apr_brigade_destroy(ob);
                if (rv != APR_SUCCESS) {
                    break;
                }
            }
        }
    }
    if (rv != APR_EOF && !APR_STATUS_IS_ECONNRESET(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r,
                      "WS03001: [%s] relay ended", fp);
    }
    return rv == APR_EOF ? APR_SUCCESS : rv;
}

int ws_relay_needed(const conn_rec *c)
{
    return ap_ssl_conn_is_ssl((conn_rec *)c) || c->master != NULL;
}

apr_status_t ws_handover(request_rec *r, int keeper_fd, apr_uint32_t flags,
                         apr_uint64_t received, const char *fp)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    char *body;
    apr_size_t prelen = 0;
    apr_status_t rv;
    int plain = !ws_relay_needed(c);

    /* This handler owns the whole connection from now on. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    c->keepalive = AP_CONN_CLOSE;
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;

    rv = drain_filters(r, bb, &body, &prelen);
    if (rv == APR_ENOSPC) {
        close(keeper_fd);
        refuse_overflow(r, flags, fp);
        return APR_SUCCESS;     /* httpd closes the connection, reading what still comes */
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      "WS03003: [%s] could not take the client's first bytes", fp);
        close(keeper_fd);
        c->aborted = 1;
        return rv;
    }
    if (plain) {
        apr_socket_t *csd = ap_get_conn_socket(c);
        apr_os_sock_t cfd;

        apr_os_sock_get(&cfd, csd);
        rv = send_attach(keeper_fd, IPC_ATTACH_FD | flags, received, body, prelen, cfd);
        close(keeper_fd);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                          "WS03002: [%s] could not hand the connection to its keeper", fp);
            return rv;
        }
        /* The keeper has the socket: close ours without shutdown(). */
        c->aborted = 1;
        return APR_SUCCESS;
    }
    rv = send_attach(keeper_fd, IPC_ATTACH_RELAY | flags, received, body, prelen, -1);
    if (rv == APR_SUCCESS) {
        rv = relay(r, keeper_fd, fp, bb);
    }
    close(keeper_fd);
    return rv;
}
