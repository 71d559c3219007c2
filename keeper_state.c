/* keeper_state.c -- the one place where a session's state and its client
 * connection's state change (session_state.h has the diagrams), with what
 * entering each state arms or disarms in the timer table; and the end of a
 * session: when it begins and how the script is stopped (EOF, SIGTERM,
 * SIGKILL). */

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

/* ---- the two state machines ------------------------------------------ */

/* An illegal move is a bug in the keeper: it is logged as one, and made
 * anyway, so that a session still ends. */
static int check_move(keeper *k, const char *what, const char *from, const char *to,
                      int legal, const char *why)
{
    if (!legal) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                     "WS02060: [%s] bug: %s state cannot go from %s to %s (%s)",
                     k->fp, what, from, to, why);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, k->env->s,
                     "WS02061: [%s] %s %s -> %s: %s", k->fp, what, from, to, why);
    }
    return legal;
}

static apr_interval_time_t stop_grace(const keeper *k)
{
    return apr_time_from_sec(k->stopping ? KEEPER_STOP_GRACE : KEEPER_TERM_GRACE);
}

void sess_set(keeper *k, sess_state to, const char *why)
{
    apr_time_t now = apr_time_now();

    if (k->sess == to) {
        return;
    }
    check_move(k, "session", sess_state_name(k->sess), sess_state_name(to),
               sess_may_go(k->sess, to), why);
    k->sess = to;
    timers_clear(&k->timers, T_RESUME);         /* over: nobody is waited for */
    switch (to) {
    case SESS_DRAIN:
        timers_set(&k->timers, T_END, now + apr_time_from_sec(KEEPER_TERM_GRACE));
        break;
    case SESS_EOF:
    case SESS_TERM:
        timers_set(&k->timers, T_END, now + stop_grace(k));
        break;
    default:                                    /* KILL: only the reaping is left */
        timers_clear(&k->timers, T_END);
        break;
    }
}

void conn_set(keeper *k, conn_state to, const char *why)
{
    static const keeper_timer of_connection[] = {
        T_CLOSE, T_LINGER, T_PING, T_SILENT, T_ACK, T_POLL
    };
    apr_time_t now = apr_time_now();
    apr_interval_time_t ping = apr_time_from_msec(k->cfg.ping_ms);

    if (k->conn == to) {
        return;
    }
    check_move(k, "connection", conn_state_name(k->conn), conn_state_name(to),
               conn_may_go(k->conn, to), why);
    k->conn = to;
    switch (to) {
    case CONN_NONE:
        /* T_FAIL stays: a client that broke the protocol and left ends the
         * session all the same. */
        for (size_t i = 0; i < sizeof(of_connection) / sizeof(of_connection[0]); i++) {
            timers_clear(&k->timers, of_connection[i]);
        }
        k->ack_held = 0;
        if (!session_over(k)) {
            /* A client that left its first connection without a word is
             * waited for only WebSessionUnusedTimeout. */
            timers_set(&k->timers, T_RESUME,
                       now + (!k->client_spoke && k->attaches <= 1
                              ? apr_time_from_msec(k->cfg.unused_timeout_ms)
                              : k->resume_timeout));
        }
        break;
    case CONN_OPEN:
        timers_clear(&k->timers, T_RESUME);
        if (ping) {
            timers_set(&k->timers, T_PING, now + ping);
            timers_set(&k->timers, T_SILENT, k->last_rx + 2 * ping + apr_time_from_sec(1));
        }
        break;
    case CONN_FAILING:
        timers_set(&k->timers, T_FAIL, now + apr_time_from_msec(FAIL_GRACE_MS));
        break;
    case CONN_CLOSING:
        /* no heartbeats or acknowledgements behind our close */
        timers_clear(&k->timers, T_RESUME);
        timers_clear(&k->timers, T_PING);
        timers_clear(&k->timers, T_SILENT);
        timers_clear(&k->timers, T_ACK);
        k->ack_held = 0;
        timers_set(&k->timers, T_CLOSE, now + apr_time_from_sec(CLOSE_SECONDS));
        break;
    case CONN_LINGER:
        for (size_t i = 0; i < sizeof(of_connection) / sizeof(of_connection[0]); i++) {
            timers_clear(&k->timers, of_connection[i]);
        }
        k->ack_held = 0;
        timers_set(&k->timers, T_LINGER, now + apr_time_from_sec(LINGER_SECONDS));
        break;
    default:
        break;
    }
}

/* ---- the end of a session --------------------------------------------- */

void begin_end(keeper *k, const char *why)
{
    if (session_over(k)) {
        return;
    }
    ws_table_mark_closing(k->env->table, k->cfg.slot, k->cfg.gen);
    snprintf(k->stats.end_why, sizeof(k->stats.end_why), "%s", why);
    k->stats.script_first = k->reaped;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02001: [%s] session ending: %s", k->fp, why);
    sess_set(k, k->reaped ? SESS_DONE : SESS_DRAIN, why);
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

/* The next step of stopping the script: when what the client sent has
 * reached its stdin (or T_END says it will not), EOF; then, each at T_END,
 * SIGTERM and SIGKILL. */
void end_step(keeper *k)
{
    switch (k->sess) {
    case SESS_DRAIN:
        if (k->sin >= 0) {
            keeper_close(k, &k->sin);
        }
        sess_set(k, SESS_EOF, "the script's stdin is closed");
        break;
    case SESS_EOF:
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02002: [%s] script still running after EOF, sending SIGTERM", k->fp);
        signal_script(k, SIGTERM);
        sess_set(k, SESS_TERM, "SIGTERM sent");
        break;
    case SESS_TERM:
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, k->env->s,
                     "WS02003: [%s] script ignored SIGTERM, sending SIGKILL", k->fp);
        signal_script(k, SIGKILL);
        sess_set(k, SESS_KILL, "SIGKILL sent");
        break;
    default:
        break;
    }
}
