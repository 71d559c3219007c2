/* keeper_state.c -- the end of a session: when it begins and how the script
 * is stopped (EOF, SIGTERM, SIGKILL). */

#include <unistd.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

/* ---- the end of a session --------------------------------------------- */

void begin_end(keeper *k, const char *why)
{
    if (k->over) {
        return;
    }
    k->over = 1;
    k->end_deadline = apr_time_now() + apr_time_from_sec(KEEPER_TERM_GRACE);
    ws_table_mark_closing(k->env->table, k->cfg.slot, k->cfg.gen);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02001: [%s] session ending: %s", k->fp, why);
}

/* A close the client caused is queued.  On a WebSocket it goes out on the
 * connection that caused it, and the session ends now.  A POST has no down
 * side of its own: the session ends once a down request has carried the
 * close (client_drop), or at the resume timeout. */
void end_after_close(keeper *k, const char *why)
{
    if (k->in_post) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02052: [%s] session closing once the client has the close: %s",
                     k->fp, why);
        return;
    }
    begin_end(k, why);
}

/* Drive EOF -> SIGTERM -> SIGKILL once the session is over. */
void advance_end(keeper *k, apr_time_t now)
{
    apr_interval_time_t grace = apr_time_from_sec(k->stopping ? KEEPER_STOP_GRACE
                                                              : KEEPER_TERM_GRACE);

    if (!k->over || k->reaped) {
        return;
    }
    if (k->end_phase == 0) {
        /* Messages the client sent before leaving still reach the script,
         * unless it does not read them within the grace period. */
        if (bytebuf_pending(&k->to_script) && !k->stopping && k->sin >= 0
            && now < k->end_deadline) {
            return;
        }
        if (k->sin >= 0) {
            close(k->sin);
            k->sin = -1;
        }
        k->end_phase = 1;
        k->end_deadline = now + grace;
    }
    else if (now >= k->end_deadline && k->end_phase == 1) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02002: [%s] script still running after EOF, sending SIGTERM", k->fp);
        signal_script(k, SIGTERM);
        k->end_phase = 2;
        k->end_deadline = now + grace;
    }
    else if (now >= k->end_deadline && k->end_phase == 2) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, k->env->s,
                     "WS02003: [%s] script ignored SIGTERM, sending SIGKILL", k->fp);
        signal_script(k, SIGKILL);
        k->end_phase = 3;
        k->end_deadline = now + grace;
    }
}
