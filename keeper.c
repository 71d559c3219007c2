/* keeper.c -- a keeper process: takes a session from the spawner (or the pool),
 * runs its event loop until the session is over, and serves the next. */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
    _exit(code);
}

/* What a session holds in this process: descriptors and memory. */
static void session_free(keeper *k)
{
    int *fds[] = { &k->listen_fd, &k->cfd, &k->sin, &k->sout, &k->serr };

    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    }
    pend_close_all(k);
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

/* Returns when the session is over: the script reaped and no client left
 * to serve. */
static void run(keeper *k)
{
    for (;;) {
        struct pollfd pf[8 + KEEPER_MAX_PENDING];
        int npf = 0, ix_life, ix_parent, ix_listen, ix_sig, ix_client = -1, ix_in = -1,
            ix_out = -1, ix_err = -1, timeout = -1, ix_pend[KEEPER_MAX_PENDING];
        apr_time_t now, deadline = 0;

        now = apr_time_now();
        flush_script(k);
        flush_client(k, now);

        /* The script is gone and its output read: queue the close frame
         * that carries its exit status (sent now, or on the next attach). */
        if (k->reaped && k->sout < 0 && !k->finish_noted) {
            k->finish_noted = 1;
            script_finished(k);
            continue;
        }
        if (k->over && k->reaped && (k->cfd < 0 || k->stopping)) {
            return;
        }
        if (!k->over && k->cfd < 0 && k->detached_since
            && now - k->detached_since >= k->resume_timeout) {
            begin_end(k, "client did not return within WebSessionResumeTimeout");
        }
        advance_end(k, now);
        if (k->lingering && now >= k->linger_until) {
            client_drop(k, "close handshake done");
            continue;
        }
        if (k->cfd >= 0 && k->close_queued && !k->lingering && now >= k->close_deadline) {
            client_drop(k, "client did not read the close frame");
            continue;
        }
        if (heartbeat(k, now) < 0) {
            continue;
        }
        pend_expire(k, now);
        if (k->fail_at && now >= k->fail_at) {
            k->fail_at = 0;
            queue_close(k, k->fail_code, k->fail_reason);
            begin_end(k, "client protocol error");
            continue;
        }

        pf[npf].fd = k->life_fd;
        pf[npf].events = POLLIN;
        ix_life = npf++;
        pf[npf].fd = k->parent_fd;
        pf[npf].events = POLLIN;
        ix_parent = npf++;
        pf[npf].fd = k->listen_fd;
        pf[npf].events = POLLIN;
        ix_listen = npf++;
        pf[npf].fd = sig_pipe[0];
        pf[npf].events = POLLIN;
        ix_sig = npf++;
        if (k->cfd >= 0) {
            pf[npf].fd = k->cfd;
            pf[npf].events = 0;
            if (flow_read_client(&k->flow, bytebuf_pending(&k->to_script))
                || k->input_done || k->close_queued) {
                pf[npf].events |= POLLIN;
            }
            if (sendq_has_output(&k->out) || bytebuf_pending(&k->http_out)) {
                pf[npf].events |= POLLOUT;
            }
            ix_client = npf++;
        }
        if (k->sin >= 0 && bytebuf_pending(&k->to_script)) {
            pf[npf].fd = k->sin;
            pf[npf].events = POLLOUT;
            ix_in = npf++;
        }
        if (k->sout >= 0
            && (flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)) > 0 || k->over)) {
            pf[npf].fd = k->sout;
            pf[npf].events = POLLIN;
            ix_out = npf++;
        }
        if (k->serr >= 0) {
            pf[npf].fd = k->serr;
            pf[npf].events = POLLIN;
            ix_err = npf++;
        }
        for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
            ix_pend[i] = -1;
            if (k->pend[i].state != PEND_FREE) {
                pf[npf].fd = k->pend[i].fd;
                pf[npf].events = POLLIN;
                ix_pend[i] = npf++;
                if (!deadline || k->pend[i].deadline < deadline) {
                    deadline = k->pend[i].deadline;
                }
            }
        }

        if (!k->over && k->cfd < 0 && k->detached_since) {
            deadline = k->detached_since + k->resume_timeout;
        }
        if (k->over && !k->reaped && k->end_phase) {
            deadline = deadline ? (deadline < k->end_deadline ? deadline : k->end_deadline)
                                : k->end_deadline;
        }
        if (k->lingering && (!deadline || k->linger_until < deadline)) {
            deadline = k->linger_until;
        }
        if (k->cfd >= 0 && k->close_queued && !k->lingering
            && (!deadline || k->close_deadline < deadline)) {
            deadline = k->close_deadline;
        }
        if (k->cfd >= 0 && !k->close_queued && k->cfg.ping_ms) {
            apr_time_t t = k->next_ping < silent_deadline(k) ? k->next_ping
                                                              : silent_deadline(k);

            if (!deadline || t < deadline) {
                deadline = t;
            }
        }
        if (k->cfd >= 0 && k->ack_at && flow_may_ack(&k->flow, bytebuf_pending(&k->to_script))
            && (!deadline || k->ack_at < deadline)) {
            deadline = k->ack_at;
        }
        if (k->cfd >= 0 && k->transport == IPC_ATTACH_POLL && !k->lingering
            && (!deadline || k->poll_until < deadline)) {
            deadline = k->poll_until;
        }
        if (k->fail_at && (!deadline || k->fail_at < deadline)) {
            deadline = k->fail_at;
        }
        if (k->over && !k->reaped && k->end_phase == 0) {
            timeout = 50;           /* waiting for stdin to drain */
        }
        if (deadline) {
            apr_interval_time_t d = deadline > now ? deadline - now : 0;
            int ms = (int)(d / 1000) + 1;
            timeout = timeout < 0 || ms < timeout ? ms : timeout;
        }

        if (poll(pf, (nfds_t)npf, timeout) < 0) {
            if (errno != EINTR) {
                ap_log_error(APLOG_MARK, APLOG_ERR, errno, k->env->s,
                             "WS02030: [%s] poll failed", k->fp);
                keeper_exit(k, 1);
            }
            continue;
        }
        if (pf[ix_sig].revents) {
            handle_signals(k);
        }
        if (pf[ix_life].revents || pf[ix_parent].revents) {
            close(k->life_fd);
            k->life_fd = -1;
            if (k->parent_fd >= 0) {
                close(k->parent_fd);
                k->parent_fd = -1;
            }
            if (!k->stopping) {
                k->stopping = 1;
                queue_close(k, WS_CLOSE_GOING_AWAY, "server shutting down");
                begin_end(k, "httpd is stopping");
            }
        }
        for (int i = 0; i < KEEPER_MAX_PENDING; i++) {
            if (ix_pend[i] >= 0 && k->pend[i].state != PEND_FREE
                && pf[ix_pend[i]].fd == k->pend[i].fd && pf[ix_pend[i]].revents) {
                pend_read(k, &k->pend[i]);
            }
        }
        if (pf[ix_listen].revents & POLLIN) {
            pend_accept(k);
        }
        if (ix_client >= 0 && k->cfd >= 0 && pf[ix_client].fd == k->cfd
            && (pf[ix_client].revents & (POLLIN | POLLHUP | POLLERR))) {
            read_client(k);
        }
        if (ix_out >= 0 && k->sout >= 0 && pf[ix_out].revents) {
            read_stdout(k, k->over ? READ_CHUNK
                                   : flow_stdout_room(&k->flow, sendq_pending_bytes(&k->out)));
        }
        if (ix_err >= 0 && k->serr >= 0 && pf[ix_err].revents) {
            read_stderr(k);
        }
        (void)ix_in;
    }
}

/* Serve the session that conn_fd asks for, from fresh state.  Returns once
 * it is over and everything it held is released, if this process may serve
 * another; exits after a failure and when httpd is stopping. */
static void serve_session(const keeper_env *env, int conn_fd)
{
    keeper kk, *k = &kk;
    uint32_t len;
    char *body = NULL, *cwd, **argv, **envp;
    char name[IPC_NAME_MAX], msg[120];

    memset(k, 0, sizeof(*k));
    k->env = env;
    k->cfd = k->sin = k->sout = k->serr = k->listen_fd = -1;
    k->life_fd = env->lifeline_fd;
    k->parent_fd = env->parent_fd;

    ipc_set_timeouts(conn_fd, ATTACH_TIMEOUT_MS);
    if (!ipc_peer_allowed(conn_fd, env->uid)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, env->s,
                     "WS02053: keeper refused a spawn request from a process of another user");
        _exit(1);
    }
    if (ipc_recv_header(conn_fd, IPC_SPAWN, &len, NULL) < 0
        || len < sizeof(ipc_spawn) || len > SPAWN_MAX_BODY
        || !(body = malloc(len))
        || ipc_read_full(conn_fd, body, len, NULL) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02040: keeper got no valid spawn request");
        _exit(1);
    }
    memcpy(&k->cfg, body, sizeof(ipc_spawn));
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

    ipc_keeper_name(name, env->prefix, k->cfg.slot, k->cfg.gen);
    k->listen_fd = ipc_listen(name, 16);
    if (k->listen_fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, env->s,
                     "WS02042: [%s] cannot listen for attaches", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "keeper cannot listen", 0);
        keeper_exit(k, 1);
    }
    if (start_script(k, argv, envp, cwd, msg, sizeof(msg)) < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02043: [%s] %s", k->fp, msg);
        send_reply(conn_fd, IPC_ERR_EXEC, msg, 0);
        keeper_exit(k, 1);
    }
    if (ws_table_go_live(env->table, k->cfg.slot, k->cfg.gen, getpid()) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, env->s,
                     "WS02044: [%s] the session's slot was taken over", k->fp);
        send_reply(conn_fd, IPC_ERR_INTERNAL, "session slot lost", 0);
        k->over = 1;
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
        pend_expect(&k->pend[0], PEND_REQUEST, attach_rule, 1);
        k->detached_since = apr_time_now();
    }
    run(k);
    if (k->stopping) {
        keeper_exit(k, 0);
    }
    session_leave(k);
    session_free(k);
}

void keeper_main(const keeper_env *env, int conn_fd)
{
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
        serve_session(env, conn_fd);
        conn_fd = pool_rejoin(env, sig_pipe[0]);
        if (conn_fd < 0) {
            _exit(0);
        }
    }
}
