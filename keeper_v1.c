/* keeper_v1.c -- websession.v1 sequencing: the client's messages, its resume
 * point and acknowledgements. */

#include <inttypes.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

int v1_fail(keeper *k, unsigned code, const char *why)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02018: [%s] websession.v1: closing with %u: %s", k->fp, code, why);
    queue_close(k, code, why);
    end_after_close(k, why);
    return -1;
}

/* One websession.v1 message from the client. */
int v1_message(keeper *k, const ws_event *ev)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_DATA:
        if (k->awaiting_r) {
            return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: data before the resume point");
        }
        k->rx_count++;
        if (k->rx_count - k->rx_acked >= ACK_EVERY) {
            timers_set(&k->timers, T_ACK, 1);           /* now */
        }
        else if (!timers_get(&k->timers, T_ACK) && !k->ack_held) {
            timers_set(&k->timers, T_ACK, apr_time_now() + apr_time_from_msec(ACK_DELAY_MS));
        }
        return deliver(k, ev->binary, m.payload, m.len);
    case WSV1_RESUME:
        if (!k->awaiting_r) {
            return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: a second resume point");
        }
        if (m.has_window) {
            return v1_fail(k, WS_CLOSE_PROTOCOL,
                           "websession.v1: a client's R carries no window");
        }
        if (sendq_resume(&k->out, m.n) < 0) {
            return v1_fail(k, WSV1_CLOSE_RESUME,
                           "websession.v1: cannot resume from that point");
        }
        k->awaiting_r = 0;
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, k->env->s,
                     "WS02019: [%s] client has %" PRIu64 " messages; resending from there",
                     k->fp, m.n);
        return 0;
    case WSV1_ACK:
        /* A stale (lower) acknowledgement is ignored, as in a POST. */
        if (m.n > k->out.acked && sendq_ack(&k->out, m.n) < 0) {
            return v1_fail(k, WS_CLOSE_PROTOCOL,
                           "websession.v1: acknowledgement of messages never sent");
        }
        k->client_spoke = 1;
        return 0;
    case WSV1_PING:
    case WSV1_ID:
        return v1_fail(k, WS_CLOSE_PROTOCOL, "websession.v1: server message from a client");
    default:
        return v1_fail(k, WS_CLOSE_PROTOCOL, m.error);
    }
}

/* A v1 message after our close was queued: only R and A are acted on. */
void v1_while_closing(keeper *k, const ws_event *ev)
{
    wsv1_msg m;

    switch (wsv1_parse(ev->data, ev->len, ev->binary, &m)) {
    case WSV1_RESUME:
        if (k->awaiting_r && sendq_resume(&k->out, m.n) == 0) {
            k->awaiting_r = 0;
        }
        else if (k->awaiting_r) {
            /* The data before the close cannot be served: close now. */
            unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
            size_t n = ws_close_payload(pl, WSV1_CLOSE_RESUME,
                                        "websession.v1: cannot resume from that point");
            size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);

            memcpy(f + h, pl, n);
            sendq_close_now(&k->out, f, h + n);
        }
        break;
    case WSV1_ACK:
        sendq_ack(&k->out, m.n);
        break;
    default:
        break;
    }
}
