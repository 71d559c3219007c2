/* fallback.c -- reading and answering the HTTP fallback's requests. */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"

#include "fallback.h"
#include "ipc.h"
#include "wsv1.h"

APLOG_USE_MODULE(websession);

/* A count header: -1 if absent, 0 if malformed, 1 with *out. */
static int count_header(request_rec *r, const char *name, apr_uint64_t *out)
{
    const char *v = apr_table_get(r->headers_in, name);
    uint64_t n;

    if (!v) {
        return -1;
    }
    if (!wsv1_number((const unsigned char *)v, strlen(v), &n)) {
        return 0;
    }
    *out = n;
    return 1;
}

static int bad_request(request_rec *r, ws_respond_fn respond, const char *text)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "WS00040: refused HTTP fallback request: %s", text);
    return respond(r, HTTP_BAD_REQUEST, "bad-request", text);
}

int ws_fallback_parse(request_rec *r, ws_fallback_req *req, ws_respond_fn respond)
{
    const char *t = apr_table_get(r->headers_in, "WebSession-Transport");
    const char *poll = apr_table_get(r->headers_in, "WebSession-Poll");

    memset(req, 0, sizeof(*req));
    if (r->method_number == M_GET && !r->header_only) {
        req->down = 1;
    }
    else if (r->method_number != M_POST) {      /* HEAD too: no body, no stream */
        apr_table_setn(r->err_headers_out, "Allow", "GET, POST");
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00041: HTTP fallback request with method %s", r->method);
        return respond(r, HTTP_METHOD_NOT_ALLOWED, "bad-method",
                       "The HTTP fallback uses GET (down) and POST (up).");
    }
    if (!strcasecmp(t, "sse")) {
        req->flags = IPC_ATTACH_SSE;
    }
    else if (!strcasecmp(t, "poll")) {
        req->flags = IPC_ATTACH_POLL;
    }
    else {
        return bad_request(r, respond, "WebSession-Transport must be 'sse' or 'poll'.");
    }
    if (!req->down) {
        if (count_header(r, "WebSession-Sequence", &req->sequence) != 1
            || req->sequence == 0) {
            return bad_request(r, respond, "A POST needs WebSession-Sequence: the number"
                               " of its first message, from 1 (digits, no leading zeros).");
        }
        return DECLINED;
    }
    if (count_header(r, "WebSession-Received", &req->received) != 1) {
        return bad_request(r, respond, "WebSession-Received must give the number of"
                           " messages received (digits, no leading zeros).");
    }
    if (!apr_table_get(r->headers_in, "Session-ID") && req->received != 0) {
        return bad_request(r, respond, "WebSession-Received must be 0 for a new session.");
    }
    if (poll) {
        if (strcasecmp(poll, "open") || req->flags != IPC_ATTACH_POLL) {
            return bad_request(r, respond, "WebSession-Poll may only be 'open', on a poll.");
        }
        req->flags |= IPC_ATTACH_OPEN;
    }
    return DECLINED;
}

void ws_fallback_start(request_rec *r, const char *id)
{
    /* The body goes around httpd's filters: nothing may encode it. */
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_setn(r->subprocess_env, "no-brotli", "1");
    r->connection->keepalive = AP_CONN_CLOSE;
    r->status = HTTP_OK;
    ap_set_content_type(r, "text/event-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache, no-store");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    if (id) {
        apr_table_setn(r->headers_out, "Session-ID", id);
    }
    ap_rflush(r);
}

/* The POST body, at most max bytes, after an ipc_post header. */
static int read_body(request_rec *r, apr_size_t max, char **out, apr_size_t *outlen)
{
    apr_size_t cap = 8192, len = sizeof(ipc_post);
    char *buf;
    int rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);

    if (rc != OK) {
        return rc;
    }
    buf = apr_palloc(r->pool, cap);
    if (ap_should_client_block(r)) {
        for (;;) {
            long n;

            if (len == cap) {
                char *bigger;

                if (len - sizeof(ipc_post) >= max) {
                    return HTTP_REQUEST_ENTITY_TOO_LARGE;
                }
                cap *= 2;
                bigger = apr_palloc(r->pool, cap);
                memcpy(bigger, buf, len);
                buf = bigger;
            }
            n = ap_get_client_block(r, buf + len, cap - len);
            if (n < 0) {
                return HTTP_BAD_REQUEST;
            }
            if (n == 0) {
                break;
            }
            len += (apr_size_t)n;
            if (len - sizeof(ipc_post) > max) {
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
        }
    }
    *out = buf;
    *outlen = len;
    return OK;
}

int ws_fallback_read_post(request_rec *r, ws_fallback_req *req, apr_size_t max,
                          ws_respond_fn respond)
{
    int rc = read_body(r, max, &req->body, &req->body_len);

    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00042: POST body over %lu bytes", (unsigned long)max);
        return respond(r, rc, "too-large", apr_psprintf(r->pool, "A POST may carry at most"
                       " %lu bytes here (2 x WebSessionBuffer + WebSessionMaxMessage + 64 KiB).",
                       (unsigned long)max));
    }
    return rc == OK ? DECLINED : rc;    /* or httpd's answer to a body it could not read */
}

int ws_fallback_stale(request_rec *r, apr_uint64_t received, apr_uint64_t acked,
                      const char *fp, ws_respond_fn respond)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "WS00045: [%s] stale down request: WebSession-Received %" APR_UINT64_T_FMT
                  ", the client has acknowledged %" APR_UINT64_T_FMT "; refused, the session"
                  " goes on", fp, received, acked);
    return respond(r, HTTP_CONFLICT, "stale-request", apr_psprintf(r->pool,
                   "This request is older than one already seen: WebSession-Received is %"
                   APR_UINT64_T_FMT ", below the %" APR_UINT64_T_FMT " messages this client"
                   " has acknowledged. The session goes on with its newer requests.",
                   received, acked));
}

int ws_fallback_post(request_rec *r, const ws_fallback_req *req, int keeper_fd,
                     const char *fp, ws_respond_fn respond)
{
    ipc_post hdr;
    ipc_reply rep;
    uint32_t rlen;

    memset(&hdr, 0, sizeof(hdr));
    hdr.first_seq = req->sequence;
    memcpy(req->body, &hdr, sizeof(hdr));
    if (ipc_send_msg(keeper_fd, IPC_POST, req->body, req->body_len, -1) < 0
        || ipc_recv_header(keeper_fd, IPC_REPLY, &rlen, NULL) < 0 || rlen != sizeof(rep)
        || ipc_read_full(keeper_fd, &rep, sizeof(rep), NULL) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, errno, r,
                      "WS00043: [%s] the session's keeper did not answer a POST", fp);
        close(keeper_fd);
        return respond(r, HTTP_GONE, "session-unknown",
                       "No such session: it is unknown, expired or belongs elsewhere.");
    }
    close(keeper_fd);
    rep.message[sizeof(rep.message) - 1] = '\0';
    switch (rep.status) {
    case IPC_OK:
        ap_set_content_type(r, "text/plain; charset=utf-8");
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        ap_rprintf(r, "A%" APR_UINT64_T_FMT, (apr_uint64_t)rep.count);
        return OK;
    case IPC_ERR_GAP:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00044: [%s] POST from message %" APR_UINT64_T_FMT
                      ", the session has %" APR_UINT64_T_FMT, fp, req->sequence,
                      (apr_uint64_t)rep.count);
        return respond(r, HTTP_CONFLICT, "sequence-gap", apr_psprintf(r->pool,
                       "Messages are missing: this POST starts at %" APR_UINT64_T_FMT
                       ", the session has received %" APR_UINT64_T_FMT ".",
                       req->sequence, (apr_uint64_t)rep.count));
    case IPC_ERR_MISMATCH:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "WS00050: [%s] refused a POST: the session was started as a plain"
                      " WebSocket session, which the HTTP fallback cannot use", fp);
        return respond(r, HTTP_BAD_REQUEST, "protocol-mismatch",
                       "This session was started as a plain WebSocket session: it cannot"
                       " use the HTTP fallback (websession.v1 only).");
    default:
        return respond(r, HTTP_BAD_REQUEST, "protocol-error", rep.message[0]
                       ? rep.message : "websession.v1: protocol error");
    }
}
