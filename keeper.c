/* keeper.c -- a keeper process: takes a session from the spawner (or the pool),
 * runs its event loop until the session is over, and serves the next. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_portable.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

static int sig_pipe[2] = { -1, -1 };

/* ---- small helpers ----------------------------------------------------- */

void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0) {
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

static void on_signal(int sig)
{
    int e = errno;
    unsigned char c = (unsigned char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) {
        /* the pipe is full: a wake-up is already pending */
    }
    errno = e;
}

void keeper_adopt_log(server_rec *s, int fd)
{
    apr_os_file_t old = -1;
    struct stat a, b;

    if (!s->error_log || apr_os_file_get(&old, s->error_log) != APR_SUCCESS || old < 0) {
        close(fd);
        return;
    }
    if (old != STDERR_FILENO && fstat(STDERR_FILENO, &a) == 0 && fstat(old, &b) == 0
        && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        dup2(fd, STDERR_FILENO);
    }
    if (fd != old) {
        dup2(fd, old);
        close(fd);
    }
}

/* ---- set-up ------------------------------------------------------------ */

/* Split the IPC_SPAWN strings into cwd, argv and envp (pointers into body). */
static int parse_spawn(const ipc_spawn *sp, char *strings, char **cwd,
                       char ***argv, char ***envp)
{
    size_t want = 1 + (size_t)sp->nargv + sp->nenv, found = 0;
    char **list;
    char *p = strings, *end = strings + sp->strings_len;

    if (sp->nargv < 1 || sp->nargv > 4096 || sp->nenv > 65536
        || sp->strings_len == 0 || end[-1] != '\0') {
        return -1;
    }
    list = calloc(want + 2, sizeof(char *));
    if (!list) {
        return -1;
    }
    while (p < end && found < want) {
        list[found++] = p;
        p += strlen(p) + 1;
    }
    if (found != want || p != end) {
        free(list);
        return -1;
    }
    /* list: cwd, argv..., NULL, env..., NULL */
    memmove(list + 1 + sp->nargv + 1, list + 1 + sp->nargv, sp->nenv * sizeof(char *));
    list[1 + sp->nargv] = NULL;
    list[want + 1] = NULL;
    *cwd = list[0];
    *argv = list + 1;
    *envp = list + 1 + sp->nargv + 1;
    return 0;
}

/* One line per ended session, for the admin (docs/DIRECTIVES.md, Logging):
 * what ran, for whom, how, how much, and how it ended. */
void session_log(keeper *k)
{
    static const char *const names[] = { "websocket", "sse", "poll" };
    char transports[32] = "", close[160];
    apr_interval_time_t age = apr_time_now() - k->stats.started;

    for (unsigned i = 0; i < 3; i++) {
        if (k->stats.transports & (1u << i)) {
            snprintf(transports + strlen(transports), sizeof(transports) - strlen(transports),
                     "%s%s", transports[0] ? "," : "", names[i]);
        }
    }
    if (k->stats.close_code) {
        snprintf(close, sizeof(close), "close %u%s%s", k->stats.close_code,
                 k->stats.close_reason[0] ? " " : "", k->stats.close_reason);
    }
    else {
        snprintf(close, sizeof(close), "no close sent");
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, k->env->s,
                 "WS02065: [%s] session ended after %" APR_TIME_T_FMT ".%01d s: script %s,"
                 " client %s, transport %s, from the client %" PRIu64 " messages (%" PRIu64
                 " bytes), from the script %" PRIu64 " messages (%" PRIu64 " bytes),"
                 " %u resumes, %s; %s",
                 k->fp, apr_time_sec(age), (int)(apr_time_usec(age) / 100000),
                 k->stats.script, k->stats.client[0] ? k->stats.client : "-",
                 transports[0] ? transports : "none",
                 k->stats.msgs_in, k->stats.bytes_in, k->stats.msgs_out, k->stats.bytes_out,
                 k->attaches > 1 ? k->attaches - 1 : 0, close,
                 k->stats.end_why[0] ? k->stats.end_why : "ended");
}

/* The session's figures for the status page (session_table.h). */
void session_publish(keeper *k)
{
    k->pub.script_pid = (apr_uint32_t)k->script_pid;
    k->pub.msgs_in = k->stats.msgs_in;
    k->pub.bytes_in = k->stats.bytes_in;
    k->pub.msgs_out = k->stats.msgs_out;
    k->pub.bytes_out = k->stats.bytes_out;
    k->pub.queued_out = sendq_pending_bytes(&k->out);
    k->pub.queued_in = bytebuf_pending(&k->to_script);
    ws_table_publish(k->env->table, k->cfg.slot, k->cfg.gen, &k->pub);
}

/* How the session ended, for the status page's totals: the first that
 * applies of ended from the page, httpd stopping, the script exiting first,
 * the client not coming back, an error (a close code that says so), else
 * the client's close. */
static ws_stat end_kind(const keeper *k)
{
    unsigned c = k->stats.close_code;

    if (k->ended_by_admin) {
        return WS_STAT_END_ADMIN;
    }
    if (k->stopping) {
        return WS_STAT_END_STOP;
    }
    if (k->stats.script_first) {
        return WS_STAT_END_SCRIPT;
    }
    if (!strncmp(k->stats.end_why, "client did not return", 21)) {
        return WS_STAT_END_TIMEOUT;
    }
    if (c == WS_CLOSE_PROTOCOL || c == WS_CLOSE_UNSUPPORTED || c == WS_CLOSE_INTERNAL
        || c == 1007 || c == 1008 || c == 1009 || c == WSV1_CLOSE_RESUME) {
        return WS_STAT_END_ERROR;
    }
    return WS_STAT_END_CLIENT;
}

/* What a session leaves in the system: the rest of its script's process
 * group, and its slot. */
static void session_leave(keeper *k)
{
    if (k->script_pid > 0) {
        kill(-k->script_pid, SIGKILL);      /* leftovers of the script's group */
    }
    ws_table_release(k->env->table, k->cfg.slot, k->cfg.gen);
}

static __attribute__((noreturn)) void keeper_exit(keeper *k, int code)
{
    session_leave(k);
    peers_refused_flush(k->env->s);
    _exit(code);
}

/* What a session holds in this process: descriptors and memory. */
static void session_free(keeper *k)
{
    int *fds[] = { &k->listen_fd, &k->cfd, &k->sin, &k->sout, &k->serr };

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        keeper_close(k, fds[i]);
    }
    pend_close_all(k);
    if (k->epfd >= 0) {
        close(k->epfd);         /* the lifeline and pidfd stay: they are the keeper's */
        k->epfd = -1;
    }
    msg_reader_destroy(k->reader);
    k->reader = NULL;
    ws_parser_destroy(k->parser);
    k->parser = NULL;
    sendq_free(&k->out);
    bytebuf_free(&k->to_script);
    bytebuf_free(&k->http_out);
}

static void handle_signals(keeper *k)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(sig_pipe[0], sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGTERM && !k->stopping) {
                k->stopping = 1;
                queue_close(k, WS_CLOSE_GOING_AWAY, "server shutting down");
                begin_end(k, "keeper received SIGTERM");
            }
        }
    }
    reap(k);
}

/* ---- descriptors the loop watches ---------------------------------- */

void keeper_close(keeper *k, int *fd)
{
    if (*fd < 0) {
        return;
    }
    for (int r = 0; r < W_COUNT; r++) {
        if (k->w_fd[r] == *fd) {
            epoll_ctl(k->epfd, EPOLL_CTL_DEL, *fd, NULL);
            k->w_fd[r] = -1;
        }
    }
    close(*fd);
    *fd = -1;
}

/* Watch fd for events under role (fd -1: watch nothing there).  Costs a
 * system call only when the role's descriptor or events change. */
static void watch(keeper *k, keeper_watch role, int fd, uint32_t events)
{
    struct epoll_event ev;
    int op = EPOLL_CTL_MOD;

    if (k->w_fd[role] == fd && (fd < 0 || k->w_ev[role] == events)) {
        return;
    }
    if (k->w_fd[role] >= 0 && k->w_fd[role] != fd) {
        epoll_ctl(k->epfd, EPOLL_CTL_DEL, k->w_fd[role], NULL);
        k->w_fd[role] = -1;
    }
    if (fd < 0) {
        return;
    }
    if (k->w_fd[role] != fd) {
        /* A descriptor may change roles (a relayed worker connection
         * becomes the client): one registration per descriptor. */
        for (int r = 0; r < W_COUNT; r++) {
            if (k->w_fd[r] == fd) {
                epoll_ctl(k->epfd, EPOLL_CTL_DEL, fd, NULL);
                k->w_fd[r] = -1;
            }
        }
        op = EPOLL_CTL_ADD;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u32 = (uint32_t)role;
    if (epoll_ctl(k->epfd, op, fd, &ev) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, k->env->s,
                     "WS02062: [%s] cannot watch a descriptor (epoll_ctl)", k->fp);
        keeper_exit(k, 1);
    }
    k->w_fd[role] = fd;
    k->w_ev[role] = events;
}

/* What the loop wants of each descriptor now.  The client is always
 * watched, with no events while flow control holds it (a hang-up is still
 * reported, as poll would); the others only while there is something to
 * do with them. */
static void watch_all(keeper *k)
{
    uint32_t client = 0;

    watch(k, W_LIFE, k->life_fd, EPOLLIN);
    watch(k, W_PARENT, k->parent_fd, EPOLLIN);
    watch(k, W_LISTEN, k->listen_fd, EPOLLIN);
    watch(k, W_SIG, sig_pipe[0], EPOLLIN);
    if (k->cfd >= 0) {
        if (flow_read_client(&k->flow, bytebuf_pending(&k->to_script))
            || k->input_done || k->close_queued) {
            client |= EPOLLIN;
        }
        if (sendq_has_output(&k->out) || bytebuf_pending(&k->http_out)) {
            client |= EPOLLOUT;
        }
    }
    watch(k, W_CLIENT, k->cfd, client);
    watch(k, W_SIN, bytebuf_pending(&k->to_script) ? k->sin : -1, EPOLLOUT);
    watch(k, W_SOUT, flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)) > 0
                     || session_over(k) ? k->sout : -1, EPOLLIN);
    watch(k, W_SERR, k->serr, EPOLLIN);
    for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
        watch(k, (keeper_watch)(W_PEND + i),
              k->pend[i].state != PEND_FREE ? k->pend[i].fd : -1, EPOLLIN);
    }
}

/* A deadline fell due (keeper_timer). */
static void on_timer(keeper *k, int id, apr_time_t now)
{
    switch (id) {
    case T_RESUME:
        begin_end(k, !k->client_spoke && k->attaches <= 1
                     ? "client did not return within WebSessionUnusedTimeout (it had sent nothing)"
                     : "client did not return within WebSessionResumeTimeout");
        break;
    case T_END:
        end_step(k);
        break;
    case T_FAIL:
    case T_CLOSE:
    case T_LINGER:
    case T_PING:
    case T_SILENT:
    case T_ACK:
    case T_POLL:
        client_timer(k, (keeper_timer)id, now);
        break;
    case T_REFUSED:
        peers_refused_due(k, now);
        break;
    default:
        pend_expired(k, id - T_PEND);
        break;
    }
}

/* Returns when the session is over: the script reaped and no client left
 * to serve.  Each turn: move what can move, act on one event of the
 * session's own (the script's end, a deadline), else sleep until a
 * descriptor is ready or the next deadline. */
static void run(keeper *k)
{
    for (;;) {
        struct epoll_event evs[W_COUNT];
        uint32_t rev[W_COUNT];
        int n, id;
        apr_time_t now;

        flush_script(k);
        ack_room(k);
        flush_client(k);

        /* The script is gone and its output read: queue the close frame
         * that carries its exit status (sent now, or on the next attach). */
        if (k->reaped && k->sout < 0 && !k->finish_noted) {
            k->finish_noted = 1;
            script_finished(k);
            continue;
        }
        if (k->sess == SESS_DONE && (k->cfd < 0 || k->stopping)) {
            return;
        }
        /* What the client sent before it left has reached the script (or
         * cannot): on to EOF without waiting for T_END. */
        if (k->sess == SESS_DRAIN
            && (!bytebuf_pending(&k->to_script) || k->sin < 0 || k->stopping)) {
            end_step(k);
            continue;
        }
        now = apr_time_now();
        if ((id = timers_take(&k->timers, now)) >= 0) {
            on_timer(k, id, now);
            continue;
        }

        watch_all(k);
        session_publish(k);
        n = epoll_wait(k->epfd, evs, W_COUNT, timers_wait_ms(&k->timers, now));
        if (n < 0) {
            if (errno != EINTR) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, k->env->s,
                             "WS02030: [%s] epoll_wait failed", k->fp);
                keeper_exit(k, 1);
            }
            continue;
        }
        /* Acted on in a fixed order, each only while its role still holds
         * the descriptor that was ready (an earlier one may have closed it). */
        memset(rev, 0, sizeof(rev));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 < W_COUNT) {
                rev[evs[i].data.u32] = evs[i].events;
            }
        }
        if (rev[W_SIG]) {
            handle_signals(k);
        }
        if ((rev[W_LIFE] && k->life_fd >= 0) || (rev[W_PARENT] && k->parent_fd >= 0)) {
            keeper_close(k, &k->life_fd);
            if (k->parent_fd >= 0) {
                keeper_close(k, &k->parent_fd);
            }
            if (!k->stopping) {
                k->stopping = 1;
                queue_close(k, WS_CLOSE_GOING_AWAY, "server shutting down");
                begin_end(k, "httpd is stopping");
            }
        }
        for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
            if (rev[W_PEND + i] && k->pend[i].state != PEND_FREE
                && k->w_fd[W_PEND + i] == k->pend[i].fd) {
                pend_read(k, &k->pend[i]);
            }
        }
        if (rev[W_LISTEN] & EPOLLIN) {
            pend_accept(k);
        }
        if (k->cfd >= 0 && k->w_fd[W_CLIENT] == k->cfd
            && (rev[W_CLIENT] & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
            read_client(k);
        }
        if (rev[W_SOUT] && k->sout >= 0 && k->w_fd[W_SOUT] == k->sout) {
            read_stdout(k, session_over(k) ? READ_CHUNK
                           : flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)));
        }
        if (rev[W_SERR] && k->serr >= 0 && k->w_fd[W_SERR] == k->serr) {
            read_stderr(k);
        }
    }
}

/* Serve the session that conn_fd asks for, from fresh state.  Returns once
 * it is over and everything it held is released, if this process may serve
 * another; exits after a failure and when httpd is stopping. */
static void serve_session(const keeper_env *env, int conn_fd, const ipc_header *first)
{
    keeper kk, *k = &kk;
    uint32_t len;
    char *body = NULL, *cwd, **argv, **envp;
    char name[IPC_NAME_MAX], msg[120];

    memset(k, 0, sizeof(*k));
    k->env = env;
    k->cfd = k->sin = k->sout = k->serr = k->listen_fd = -1;
    k->life_fd = env->lifeline_fd;
    for (int i = 0; i < W_COUNT; i++) {
        k->w_fd[i] = -1;
    }
    k->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (k->epfd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02063: keeper cannot create its epoll set");
        _exit(1);
    }
    k->parent_fd = env->parent_fd;

    ipc_set_timeouts(conn_fd, ATTACH_TIMEOUT_MS);
    if (!ipc_peer_allowed(conn_fd, env->uid)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, env->s,
                     "WS02053: keeper refused a spawn request from a process of another user");
        _exit(1);
    }
    len = first->len;
    errno = EPROTO;             /* for a header the checks below refuse */
    if (first->magic != IPC_MAGIC || first->kind != IPC_SPAWN
        || len < sizeof(ipc_spawn) || len > SPAWN_MAX_BODY
        || !(body = malloc(len))
        || ipc_read_full(conn_fd, body, len, NULL) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02040: keeper got no valid spawn request");
        _exit(1);
    }
    memcpy(&k->cfg, body, sizeof(ipc_spawn));
    k->cfg.route[sizeof(k->cfg.route) - 1] = '\0';
    ws_pubid_hex(k->cfg.pubid, k->fp);
    if (len != sizeof(ipc_spawn) + k->cfg.strings_len
        || parse_spawn(&k->cfg, body + sizeof(ipc_spawn), &cwd, &argv, &envp) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02041: [%s] malformed spawn request", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "malformed spawn request", 0);
        keeper_exit(k, 1);
    }
    k->resume_timeout = apr_time_from_msec(k->cfg.resume_timeout_ms);
    k->v1 = k->cfg.protocol == IPC_PROTOCOL_V1;
    k->flow.window = k->cfg.buffer;
    k->flow.max_message = k->cfg.max_message;
    k->flow.v1 = k->v1;
    sendq_init(&k->out, k->v1);
    k->reader = msg_reader_create((int)k->cfg.mode, k->cfg.max_message);
    k->parser = ws_parser_create(k->cfg.max_message, 1);

    ipc_keeper_name(name, env->names, k->cfg.slot, k->cfg.gen);
    k->listen_fd = ipc_listen(name, 16);
    if (k->listen_fd < 0 && errno == EADDRINUSE) {
        /* Only a process that knows the name key (root, or one that can
         * read the memory of httpd's processes) can have taken it. */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02080: [%s] the session's socket name (slot %u, generation %u) is"
                     " taken by another process; the session cannot start", k->fp,
                     (unsigned)k->cfg.slot, (unsigned)k->cfg.gen);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "the session's socket name is taken", 0);
        keeper_exit(k, 1);
    }
    if (k->listen_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02042: [%s] cannot listen for attaches", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "keeper cannot listen", 0);
        keeper_exit(k, 1);
    }
    set_nonblock(k->listen_fd);         /* pend_accept takes what waits, then stops */
    if (start_script(k, argv, envp, cwd, msg, sizeof(msg)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02043: [%s] %s", k->fp, msg);
        send_reply(conn_fd, IPC_ERR_EXEC, msg, 0);
        keeper_exit(k, 1);
    }
    k->stats.started = apr_time_now();
    snprintf(k->stats.script, sizeof(k->stats.script), "%s", argv[0]);
    {
        const char *host = "", *port = "", *https = "";

        for (char **e = envp; *e; e++) {
            if (!strncmp(*e, "REMOTE_ADDR=", 12)) {
                snprintf(k->stats.client, sizeof(k->stats.client), "%s", *e + 12);
            }
            else if (!strncmp(*e, "SERVER_NAME=", 12)) {
                host = *e + 12;
            }
            else if (!strncmp(*e, "SERVER_PORT=", 12)) {
                port = *e + 12;
            }
            else if (!strncmp(*e, "HTTPS=", 6)) {
                https = *e + 6;
            }
        }
        snprintf(k->pub.target, sizeof(k->pub.target), "%s://%s:%s %s",
                 !strcasecmp(https, "on") ? "https" : "http", host, port, argv[0]);
        _Static_assert(sizeof(k->pub.client) == sizeof(k->stats.client), "one size");
        memcpy(k->pub.client, k->stats.client, sizeof(k->pub.client));
    }
    session_publish(k);     /* the strings before the session is visible */
    if (ws_table_go_live(env->table, k->cfg.slot, k->cfg.gen, getpid()) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02044: [%s] the session's slot was taken over", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "session slot lost", 0);
        signal_script(k, SIGKILL);
        _exit(1);
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, env->s,
                 "WS02045: [%s] session started: %s (pid %ld)", k->fp, argv[0],
                 (long)k->script_pid);
    free(argv - 1);
    free(body);

    send_reply(conn_fd, IPC_OK, "", 0);
    {
        /* The worker's ATTACH follows on this connection, read in the loop;
         * until a client is attached the session counts as detached. */
        const ipcr_rule attach_rule[] = {
            { IPC_ATTACH, sizeof(ipc_attach), sizeof(ipc_attach) + IPC_MAX_PREREAD },
        };

        k->pend[0].fd = conn_fd;
        k->pend[0].passed = -1;
        ipcr_init(&k->pend[0].rd);
        pend_expect(k, &k->pend[0], PEND_REQUEST, attach_rule, 1);
        timers_set(&k->timers, T_RESUME, apr_time_now() + k->resume_timeout);
        peers_refused_arm(k);           /* from an earlier session, not logged yet */
    }
    run(k);
    session_log(k);
    ws_table_note(env->table, end_kind(k));
    if (k->stopping) {
        keeper_exit(k, 0);
    }
    session_leave(k);
    session_free(k);
}

void keeper_main(const keeper_env *env, int conn_fd, const ipc_header *first)
{
    ipc_header next = *first;
    struct sigaction sa;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        _exit(1);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGWINCH, SIG_IGN);

    /* Blocks of 128 KiB and more (large messages, full buffers) are mapped
     * and unmapped on their own, whatever sizes an earlier session used, so
     * that a session leaves no large heap behind for the next. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    for (;;) {
        serve_session(env, conn_fd, &next);
        conn_fd = pool_rejoin(env, sig_pipe[0], &next);
        if (conn_fd < 0) {
            peers_refused_flush(env->s);
            _exit(0);
        }
    }
}
