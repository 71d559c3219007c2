/* keeper_ipc.c -- connections to the session's socket (workers' HELLO,
 * ATTACH and POST; the spawner's LOGFD), read as their bytes come. */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

void send_reply(int fd, uint32_t status, const char *msg, uint64_t count)
{
    ipc_reply r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.keeper_pid = (int32_t)getpid();
    r.count = count;
    snprintf(r.message, sizeof(r.message), "%s", msg ? msg : "");
    ipc_send_msg(fd, IPC_REPLY, &r, sizeof(r), -1);
}

/* The refusal of an attach with the other protocol, on the client's
 * connection (or the relay). */
static void refuse_mismatch(keeper *k, int out, uint32_t flags)
{
    unsigned char f[WS_MAX_HEADER + WS_MAX_CONTROL], pl[WS_MAX_CONTROL];
    size_t n = ws_close_payload(pl, WSV1_CLOSE_MISMATCH,
                                "resume with the protocol the session started with");
    size_t h = ws_frame_header(f, 1, WS_OP_CLOSE, n, NULL);
    bytebuf ev = { 0 };
    sse_frame sf;

    memcpy(f + h, pl, n);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02047: [%s] refused a resume with the other protocol", k->fp);
    if (flags & IPC_ATTACH_HTTP) {
        sse_comment(&ev, WSV1_PROTOCOL);
        sse_frame_whole(f, h + n, &sf);
        sse_encode(&ev, &sf);
        if (flags & IPC_ATTACH_POLL) {
            sse_comment(&ev, "end");    /* a complete poll answer */
        }
    }
    else {
        bytebuf_append(&ev, f, h + n);
    }
    if (send(out, ev.data + ev.off, bytebuf_pending(&ev), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone anyway */
    }
    bytebuf_free(&ev);
}

/* A whole IPC_ATTACH on fd (msg, len; passed: the descriptor that came
 * with it, or -1): take the client it carries.  Returns 1 when fd itself
 * became the client (a relay), else 0; either way passed is consumed. */
static int take_attach(keeper *k, int fd, const unsigned char *msg, size_t len, int passed)
{
    ipc_attach a;
    const unsigned char *pre = msg + sizeof(a);

    memcpy(&a, msg, sizeof(a));     /* the reader's rules: len >= sizeof(a) */
    if (len != sizeof(a) + a.preread_len) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02014: [%s] bad attach request from httpd", k->fp);
        goto fail;
    }
    if (!(a.flags & IPC_ATTACH_V1) != !k->v1) {
        /* The worker answered 101 (or 200) already: tell the client in band. */
        refuse_mismatch(k, passed >= 0 ? passed : fd, a.flags);
        goto fail;
    }
    if ((a.flags & IPC_ATTACH_HTTP) == IPC_ATTACH_HTTP
        || ((a.flags & IPC_ATTACH_HTTP) && !(a.flags & IPC_ATTACH_V1))
        || ((a.flags & IPC_ATTACH_OPEN) && !(a.flags & IPC_ATTACH_POLL))) {
        goto inconsistent;
    }
    if ((a.flags & IPC_ATTACH_HTTP) && http_stale(k, a.received)) {
        /* Acknowledged past it since its HELLO: too late for a 409, but
         * it still must not evict the current connection. */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02059: [%s] dropped a stale down request (from %" PRIu64
                     ", %" PRIu64 " acknowledged); the current one goes on",
                     k->fp, (uint64_t)a.received, k->out.acked);
        goto fail;
    }
    switch (a.flags & (IPC_ATTACH_FD | IPC_ATTACH_RELAY)) {
    case IPC_ATTACH_FD:
        if (passed < 0) {
            break;
        }
        client_attach(k, passed, 0, &a, pre, a.preread_len);
        return 0;
    case IPC_ATTACH_RELAY:
        if (passed >= 0) {
            break;
        }
        ipc_set_timeouts(fd, 0);
        client_attach(k, fd, 1, &a, pre, a.preread_len);
        return 1;
    }
inconsistent:
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                 "WS02015: [%s] attach request with flags %u is inconsistent", k->fp, a.flags);
fail:
    if (passed >= 0) {
        close(passed);
    }
    return 0;
}

/* ---- connections to the keeper's socket -------------------------------- */

/* Peers of other users refused, for the log's rate (refusals.h): per
 * process, over the sessions it serves one after another. */
static ws_refusals refused;
static long refused_uid = -1, refused_pid = -1;     /* the latest of them */

static void log_refused(server_rec *s, unsigned long n)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "WS02081: keeper refused %lu connection(s) to its session's socket from"
                 " processes of other users since the last such line (the latest from"
                 " uid %ld, pid %ld)", n, refused_uid, refused_pid);
}

/* A peer of another user: closed unread.  Any local user can connect (the
 * socket's name is listed in /proc/net/unix), as often as it likes. */
static void refuse_peer(keeper *k, int fd)
{
    unsigned long n;

    ipc_peer_ids(fd, &refused_uid, &refused_pid);
    close(fd);
    if (!refusals_note(&refused, apr_time_now(), &n)) {
        peers_refused_arm(k);
    }
    else if (n == 1) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02016: [%s] refused an attach from a process of another user"
                     " (uid %ld, pid %ld); more refusals are logged at most every %d s",
                     k->fp, refused_uid, refused_pid, REFUSALS_QUIET_SECONDS);
    }
    else {
        log_refused(k->env->s, n);
    }
}

void peers_refused_arm(keeper *k)
{
    apr_time_t at = refusals_deadline(&refused);

    if (at) {
        timers_set(&k->timers, T_REFUSED, at);
    }
}

void peers_refused_due(keeper *k, apr_time_t now)
{
    unsigned long n = refusals_due(&refused, now);

    if (n) {
        log_refused(k->env->s, n);
    }
    peers_refused_arm(k);
}

void peers_refused_flush(server_rec *s)
{
    unsigned long n = refusals_drain(&refused);

    if (n) {
        log_refused(s, n);
    }
}

static const ipcr_rule greeting_rules[] = {
    { IPC_HELLO, WS_SECRET_LEN, WS_SECRET_LEN + sizeof(ipc_hello_down) },
    { IPC_LOGFD, 0, 0 },
};

static void pend_close(keeper *k, pending_conn *pc)
{
    timers_clear(&k->timers, T_PEND + (int)(pc - k->pend));
    if (pc->fd >= 0) {
        keeper_close(k, &pc->fd);
    }
    if (pc->passed >= 0) {
        close(pc->passed);
    }
    ipcr_free(&pc->rd);
    pc->fd = pc->passed = -1;
    pc->state = PEND_FREE;
}

void pend_close_all(keeper *k)
{
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        if (k->pend[i].state != PEND_FREE) {
            pend_close(k, &k->pend[i]);
        }
    }
}

/* The next message of pc is expected within ATTACH_TIMEOUT_MS. */
void pend_expect(keeper *k, pending_conn *pc, pend_state state, const ipcr_rule *rules,
                        size_t nrules)
{
    pc->state = state;
    timers_set(&k->timers, T_PEND + (int)(pc - k->pend),
               apr_time_now() + apr_time_from_msec(ATTACH_TIMEOUT_MS));
    ipcr_expect(&pc->rd, rules, nrules);
}

/* A connection on our socket: from now on read as its bytes come.  Peers
 * of other users are refused as they are accepted, up to KEEPER_ACCEPT_BATCH
 * in one turn, so that a flood of them does not keep the backlog full; an
 * allowed one ends the turn's accepting, as before. */
void pend_accept(keeper *k)
{
    pending_conn *pc = NULL;
    int fd = -1;

    for (int n = 0; n < KEEPER_ACCEPT_BATCH && fd < 0; n++) {
        fd = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            return;             /* EAGAIN: nothing (more) waits */
        }
        if (!ipc_peer_allowed(fd, k->env->uid)) {
            refuse_peer(k, fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        return;
    }
    /* A free slot, else the oldest connection that has not shown the
     * session id: a worker past its HELLO (or the spawn connection, whose
     * ATTACH is due) is never pushed out by peers that say nothing. */
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        pending_conn *c = &k->pend[i];

        if (c->state == PEND_FREE) {
            pc = c;
            break;
        }
        if (c->state == PEND_GREETING
            && (!pc || timers_get(&k->timers, T_PEND + i)
                       < timers_get(&k->timers, T_PEND + (int)(pc - k->pend)))) {
            pc = c;
        }
    }
    if (!pc) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02058: [%s] %d accepted requests under way on the session's socket:"
                     " refused another connection", k->fp, KEEPER_MAX_PENDING);
        close(fd);
        return;
    }
    if (pc->state != PEND_FREE) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02055: [%s] %d connections to the session's socket at once:"
                     " dropped the oldest that had not shown the session id",
                     k->fp, KEEPER_MAX_PENDING);
        pend_close(k, pc);
    }
    ipc_set_timeouts(fd, ATTACH_TIMEOUT_MS);        /* our replies */
    pc->fd = fd;
    pc->passed = -1;
    ipcr_init(&pc->rd);
    pend_expect(k, pc, PEND_GREETING, greeting_rules, 2);
}

/* A whole HELLO or LOGFD. */
static void pend_greeting(keeper *k, pending_conn *pc)
{
    if (pc->rd.h.kind == IPC_LOGFD) {
        /* From the spawner, our parent, after a restart.  The uid check
         * lets any process of httpd's User this far: it must not redirect
         * our log (and every script's stderr) to a file of its own. */
        if (pc->passed >= 0 && ipc_peer_is(pc->fd, getppid())) {
            keeper_adopt_log(k->env->s, pc->passed);
            pc->passed = -1;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                         "WS02054: [%s] refused a log descriptor that did not come from the spawner",
                         k->fp);
        }
        pend_close(k, pc);
        return;
    }
    if (pc->rd.h.len != WS_SECRET_LEN
        && pc->rd.h.len != WS_SECRET_LEN + sizeof(ipc_hello_down)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02064: [%s] bad HELLO from httpd (%u bytes)", k->fp,
                     (unsigned)pc->rd.h.len);
        pend_close(k, pc);
        return;
    }
    if (!ws_ct_equal(pc->rd.body, k->cfg.secret, WS_SECRET_LEN)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02017: [%s] refused an attach that did not present the session id",
                     k->fp);
        pend_close(k, pc);
        return;
    }
    if (k->cfd >= 0 && !session_over(k)) {
        /* What the current connection has delivered comes first: a close
         * frame sent before this attach ends the session before it. */
        read_client(k);
    }
    if (session_over(k)) {
        send_reply(pc->fd, IPC_ERR_CLOSING, "session is ending", 0);
        pend_close(k, pc);
        return;
    }
    if (pc->rd.h.len > WS_SECRET_LEN) {
        ipc_hello_down d;

        memcpy(&d, pc->rd.body + WS_SECRET_LEN, sizeof(d));
        if (http_stale(k, d.received)) {
            /* The worker answers 409; nothing here changes. */
            send_reply(pc->fd, IPC_ERR_STALE, "stale down request", k->out.acked);
            pend_close(k, pc);
            return;
        }
    }
    send_reply(pc->fd, IPC_OK, "", 0);
    {
        const ipcr_rule request_rules[] = {
            { IPC_ATTACH, sizeof(ipc_attach), sizeof(ipc_attach) + IPC_MAX_PREREAD },
            { IPC_POST, sizeof(ipc_post),
              sizeof(ipc_post) + IPC_MAX_POST(k->cfg.buffer, k->cfg.max_message) },
            { IPC_END, 0, 0 },
        };

        if (pc->passed >= 0) {
            close(pc->passed);          /* nothing travels with a HELLO */
            pc->passed = -1;
        }
        pend_expect(k, pc, PEND_REQUEST, request_rules, 3);
    }
}

/* The status page ends the session (IPC_END): as at any other end, the
 * client gets a close (1001 and a reason that says why), the script EOF. */
static void end_from_status(keeper *k, int fd)
{
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, k->env->s,
                 "WS02066: [%s] session ended from the status page", k->fp);
    k->ended_by_admin = 1;
    queue_close(k, WS_CLOSE_GOING_AWAY, "ended by the server's administrator");
    begin_end(k, "ended from the status page");
    send_reply(fd, IPC_OK, "", 0);
}

/* A whole ATTACH, POST or END, after an accepted HELLO. */
static void pend_request(keeper *k, pending_conn *pc)
{
    if (pc->rd.h.kind == IPC_POST && pc->passed < 0) {
        handle_post(k, pc->fd, pc->rd.body, pc->rd.h.len);
    }
    else if (pc->rd.h.kind == IPC_END && pc->passed < 0) {
        end_from_status(k, pc->fd);
    }
    else if (pc->rd.h.kind == IPC_ATTACH) {
        int passed = pc->passed;

        pc->passed = -1;
        if (take_attach(k, pc->fd, pc->rd.body, pc->rd.h.len, passed)) {
            pc->fd = -1;                /* it is the client now */
        }
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02050: [%s] bad POST request from httpd", k->fp);
    }
    pend_close(k, pc);
}

/* Read what pc has sent; act on a whole message. */
void pend_read(keeper *k, pending_conn *pc)
{
    unsigned char buf[READ_CHUNK];
    size_t need = ipcr_need(&pc->rd);
    ssize_t n = ipc_recv_some(pc->fd, buf, need < sizeof(buf) ? need : sizeof(buf),
                              &pc->passed);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        pend_close(k, pc);              /* gone before its message was whole */
        return;
    }
    switch (ipcr_feed(&pc->rd, buf, (size_t)n)) {
    case IPCR_MORE:
        return;
    case IPCR_ERROR:
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                     "WS02057: [%s] bad request on the session's socket: %s",
                     k->fp, pc->rd.error);
        pend_close(k, pc);
        return;
    case IPCR_DONE:
        if (pc->state == PEND_GREETING) {
            pend_greeting(k, pc);
        }
        else {
            pend_request(k, pc);
        }
        return;
    }
}

/* pend[i]'s message was not whole by its deadline (T_PEND + i): a silent
 * or slow peer holds only its own slot, never the session. */
void pend_expired(keeper *k, int i)
{
    if (i >= 0 && i < KEEPER_MAX_PENDING && k->pend[i].state != PEND_FREE) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02056: [%s] a connection to the session's socket sent no whole"
                     " request within %d ms; dropped", k->fp, ATTACH_TIMEOUT_MS);
        pend_close(k, &k->pend[i]);
    }
}
