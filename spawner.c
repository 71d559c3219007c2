/* spawner.c -- the keeper-forking daemon, started from httpd's parent. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"
#include "ap_listen.h"
#include "ap_mpm.h"
#include "mpm_common.h"

#include "apr_portable.h"
#include "apr_general.h"

#include "ipc.h"
#include "keeper.h"
#include "pool.h"
#include "refusals.h"
#include "spawner.h"
#include "ws_handshake.h"

APLOG_USE_MODULE(websession);

/* Connections accepted from allowed peers whose first message is not
 * whole yet: at most this many at once (a new one pushes out the oldest),
 * each for at most this long.  Workers, keepers and httpd's parent write
 * theirs as soon as they connect. */
#define SPAWNER_MAX_PENDING     64
#define SPAWNER_PENDING_MS      1000
/* Accepted in one turn of the loop, at most. */
#define SPAWNER_ACCEPT_BATCH    64
/* Seconds between sweeps of the table for slots of keepers nobody reaps. */
#define SPAWNER_SWEEP_SECONDS   5

typedef struct {
    int fd;                     /* -1: unused */
    int passed;                 /* a descriptor that came along, or -1 */
    apr_time_t until;
    size_t got;
    unsigned char buf[sizeof(ipc_header) + sizeof(ipc_idle)];
} spawner_conn;

static int spawner_sig[2] = { -1, -1 };
static int parent_fd = -1;      /* pidfd of httpd's parent */
static ws_pool pool;            /* keepers waiting for a session */
static spawner_conn pending[SPAWNER_MAX_PENDING];
static ws_refusals refused;     /* peers of other users, for the log's rate */
static long refused_uid = -1, refused_pid = -1;     /* the latest of them */
static ws_refusals dropped;     /* allowed peers that sent no request we take */
static const char *dropped_why = "";                /* the latest of them */

static void spawner_on_signal(int sig)
{
    int e = errno;
    unsigned char c = (unsigned char)sig;

    if (write(spawner_sig[1], &c, 1) < 0) {
        /* a wake-up is already pending */
    }
    errno = e;
}

static void reap_keepers(ws_shared *sh, server_rec *s)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        unsigned freed = ws_table_release_pid(sh->table, pid);

        if (freed) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "WS01001: keeper %ld died (status %d) leaving %u session(s);"
                         " their slots are freed", (long)pid, st, freed);
        }
    }
}

/* A keeper is its spawner's child: when a spawner dies (and httpd's parent
 * starts another), the keepers it forked go on, but no process can reap
 * them any more.  One that dies then leaves its slot taken for good.  So
 * the spawner looks for slots whose keeper is not its child and frees each
 * whose session socket is no longer bound.  The socket, not the pid, is the
 * test: its name is the session's own (slot and generation), no other
 * process can hold it (ipc.h), and the keeper releases the slot before it
 * closes the socket; a pid, once its process is gone, may be anyone's. */
static void sweep_orphans(ws_shared *sh, server_rec *s)
{
    for (unsigned slot = 0; slot < ws_table_capacity(sh->table); slot++) {
        ws_slot_info info, again;
        siginfo_t si;
        char name[IPC_NAME_MAX], fp[2 * WS_PUBID_LEN + 1];

        if (ws_table_get(sh->table, slot, &info) != APR_SUCCESS
            || (info.state != WS_SLOT_LIVE && info.state != WS_SLOT_CLOSING)
            || info.keeper_pid <= 0) {
            continue;
        }
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)info.keeper_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0
            || errno != ECHILD) {
            continue;           /* our child: reap_keepers sees its end */
        }
        ipc_keeper_name(name, &sh->names, slot, info.gen);
        if (ipc_name_in_use(name) != 0
            || ws_table_get(sh->table, slot, &again) != APR_SUCCESS
            || again.gen != info.gen || again.keeper_pid != info.keeper_pid
            || (again.state != WS_SLOT_LIVE && again.state != WS_SLOT_CLOSING)) {
            continue;           /* alive, or it let the slot go itself */
        }
        ws_table_release(sh->table, slot, info.gen);
        ws_pubid_hex(info.pubid, fp);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "WS01014: [%s] keeper %ld is gone; an earlier spawner forked it, so"
                     " nobody reaped it: its slot is freed", fp, (long)info.keeper_pid);
    }
}

/* ---- peers: checked as accepted, read as their bytes come -------------- */

/* A peer of another user: closed unread, nothing forked for it; logged at
 * a bounded rate, since any local user can connect as often as it likes. */
static void refuse_peer(server_rec *s, int fd, uid_t uid)
{
    unsigned long n;

    ipc_peer_ids(fd, &refused_uid, &refused_pid);
    close(fd);
    if (!refusals_note(&refused, apr_time_now(), &n)) {
        return;
    }
    if (n == 1) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS01012: refused a connection from uid %ld (pid %ld): only httpd's"
                     " User (uid %ld) and root may use the spawner; more refusals are"
                     " logged at most every %d s", refused_uid, refused_pid, (long)uid,
                     REFUSALS_QUIET_SECONDS);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS01013: refused %lu connection(s) from processes of other users"
                     " since the last such line (the latest from uid %ld, pid %ld)",
                     n, refused_uid, refused_pid);
    }
}

static void log_dropped(server_rec *s, unsigned long n)
{
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "WS01015: dropped %lu connection(s) to the spawner since the last such"
                 " line (the latest: %s)", n, dropped_why);
}

/* What refuse_peer and conn_drop only counted, once it is due. */
static void refusals_flush(server_rec *s, apr_time_t now)
{
    unsigned long n = refusals_due(&refused, now);

    if (n) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS01013: refused %lu connection(s) from processes of other users"
                     " since the last such line (the latest from uid %ld, pid %ld)",
                     n, refused_uid, refused_pid);
    }
    n = refusals_due(&dropped, now);
    if (n) {
        log_dropped(s, n);
    }
}

static void conn_free(spawner_conn *c, int close_fd)
{
    if (close_fd && c->fd >= 0) {
        close(c->fd);
    }
    if (c->passed >= 0) {
        close(c->passed);
    }
    c->fd = c->passed = -1;
}

/* A connection from an allowed peer (httpd's User, root) that brought no
 * request the spawner takes, in time.  Such a peer can connect as often as
 * any: logged at the same bounded rate as refusals. */
static void conn_drop(server_rec *s, spawner_conn *c, const char *why)
{
    unsigned long n;

    conn_free(c, 1);
    dropped_why = why;
    if (refusals_note(&dropped, apr_time_now(), &n)) {
        log_dropped(s, n);
    }
}

static void fork_keeper(ws_shared *sh, server_rec *s, int fd, uid_t uid,
                        const ipc_header *first)
{
    pid_t pid = fork();

    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s,
                     "WS01002: cannot fork a keeper");
        return;
    }
    if (pid == 0) {
        keeper_env env;

        close(sh->listen_fd);
        close(spawner_sig[0]);
        close(spawner_sig[1]);
        pool_forget(&pool);
        for (int i = 0; i < SPAWNER_MAX_PENDING; i++) {
            conn_free(&pending[i], pending[i].fd != fd);
        }
        signal(SIGCHLD, SIG_DFL);
        env.table = sh->table;
        env.names = &sh->names;
        env.lifeline_fd = sh->lifeline[0];
        env.parent_fd = parent_fd;
        env.uid = uid;
        env.s = s;
        env.pool_token = pool.token;
        keeper_main(&env, fd, first);
    }
}

/* After a restart httpd's parent sends the reopened error log (conn brought
 * IPC_LOGFD and logfd): use it, and pass it to every keeper. */
static void log_handover(ws_shared *sh, server_rec *s, int conn, int logfd)
{
    apr_os_file_t cur;

    if (!ipc_peer_allowed(conn, 0)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS01011: refused a log descriptor from a process that is not root");
        close(logfd);
        return;
    }
    keeper_adopt_log(s, logfd);
    if (!s->error_log || apr_os_file_get(&cur, s->error_log) != APR_SUCCESS) {
        return;
    }
    pool_send_log(&pool, cur);
    for (unsigned slot = 0; slot < ws_table_capacity(sh->table); slot++) {
        ws_slot_info info;
        char name[IPC_NAME_MAX];
        int k;

        if (ws_table_get(sh->table, slot, &info) != APR_SUCCESS
            || (info.state != WS_SLOT_LIVE && info.state != WS_SLOT_CLOSING)) {
            continue;
        }
        ipc_keeper_name(name, &sh->names, slot, info.gen);
        k = ipc_connect(name, 1000);
        if (k >= 0) {
            ipc_send_msg(k, IPC_LOGFD, NULL, 0, cur);
            close(k);
        }
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "WS01008: spawner and keepers now write to the reopened error log");
}

/* Read what c has sent, up to its first message; act on it once whole:
 * a worker's IPC_SPAWN (only its header: the keeper reads the rest), a
 * keeper's IPC_IDLE, httpd's parent's IPC_LOGFD. */
static void conn_read(ws_shared *sh, server_rec *s, uid_t uid, spawner_conn *c)
{
    ipc_header h;
    size_t want = sizeof(h);
    ssize_t n;

    if (c->got >= sizeof(h)) {
        memcpy(&h, c->buf, sizeof(h));
        if (h.kind == IPC_IDLE && h.len == sizeof(ipc_idle)) {
            want += sizeof(ipc_idle);       /* the rest of an offer */
        }
    }
    n = ipc_recv_some(c->fd, c->buf + c->got, want - c->got, &c->passed);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
    }
    if (n <= 0) {
        conn_drop(s, c, "closed before its request was whole");
        return;
    }
    c->got += (size_t)n;
    if (c->got < sizeof(h)) {
        return;
    }
    memcpy(&h, c->buf, sizeof(h));
    if (h.magic != IPC_MAGIC) {
        conn_drop(s, c, "not a request of this module");
        return;
    }
    switch (h.kind) {
    case IPC_SPAWN:
        if (c->passed >= 0) {
            break;
        }
        if (!pool_hand(&pool, c->fd, &h)) {
            fork_keeper(sh, s, c->fd, uid, &h);
        }
        conn_free(c, 1);
        return;
    case IPC_IDLE:
        if (h.len != sizeof(ipc_idle) || c->passed >= 0) {
            break;
        }
        if (c->got == sizeof(h) + sizeof(ipc_idle)) {
            ipc_idle idle;

            memcpy(&idle, c->buf + sizeof(h), sizeof(idle));
            pool_park(&pool, c->fd, &idle, s);
            conn_free(c, 0);    /* pool_park took the descriptor */
        }
        return;
    case IPC_LOGFD:
        if (h.len != 0 || c->passed < 0) {
            break;
        }
        log_handover(sh, s, c->fd, c->passed);
        c->passed = -1;
        conn_free(c, 1);
        return;
    }
    conn_drop(s, c, "not a request the spawner takes");
}

/* Accept what waits on the spawner's socket: a peer of another user is
 * refused here, before anything is read; the others are read as their
 * bytes come, from the loop. */
static void accept_peers(ws_shared *sh, server_rec *s, uid_t uid)
{
    for (int i = 0; i < SPAWNER_ACCEPT_BATCH; i++) {
        int fd = accept4(sh->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        spawner_conn *c = NULL;

        if (fd < 0) {
            return;             /* EAGAIN: nothing more waits */
        }
        if (!ipc_peer_allowed(fd, uid)) {
            refuse_peer(s, fd, uid);
            continue;
        }
        for (int j = 0; j < SPAWNER_MAX_PENDING; j++) {
            if (pending[j].fd < 0) {
                c = &pending[j];
                break;
            }
            if (!c || pending[j].until < c->until) {
                c = &pending[j];
            }
        }
        if (c->fd >= 0) {
            conn_drop(s, c, "the oldest of too many connections that had sent no request");
        }
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->passed = -1;
        c->until = apr_time_now() + apr_time_from_msec(SPAWNER_PENDING_MS);
        conn_read(sh, s, uid, c);       /* most have written theirs already */
    }
}

/* Milliseconds from now until t (at least 0), or keep when that is sooner
 * (-1: none). */
static int sooner(int keep, apr_time_t t, apr_time_t now)
{
    apr_interval_time_t d = t > now ? t - now : 0;
    int ms = (int)((d + 999) / 1000);

    return keep < 0 || ms < keep ? ms : keep;
}

static void spawner_main(ws_shared *sh, server_rec *s, apr_pool_t *p)
{
    struct sigaction sa;
    uid_t uid;
    apr_time_t next_sweep;

    close(sh->lifeline[1]);
    /* The lifeline ends when every holder of its write end is gone; the
     * pidfd fires when httpd's parent exits, however it exits. */
    parent_fd = pidfd_open(getppid(), 0);
    setsid();
    ap_close_listeners();
    if (ap_run_drop_privileges(p, s)) {
        ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s,
                     "WS01003: spawner cannot drop privileges; sessions are disabled");
        _exit(1);
    }
    uid = geteuid();
    if (pipe2(spawner_sig, O_CLOEXEC | O_NONBLOCK) < 0) {
        _exit(1);
    }
    if (pool_init(&pool) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ALERT, 0, s,
                     "WS01010: spawner cannot draw random bytes; sessions are disabled");
        _exit(1);
    }
    /* Accept until nothing waits (the parent never accepts on it). */
    fcntl(sh->listen_fd, F_SETFL, fcntl(sh->listen_fd, F_GETFL) | O_NONBLOCK);
    for (int i = 0; i < SPAWNER_MAX_PENDING; i++) {
        pending[i].fd = pending[i].passed = -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = spawner_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGWINCH, SIG_IGN);

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                 "WS01004: spawner %ld ready, running keepers as uid %ld",
                 (long)getpid(), (long)uid);
    next_sweep = apr_time_now();        /* at once: a predecessor may have died */
    for (;;) {
        struct pollfd pf[4 + POOL_MAX + SPAWNER_MAX_PENDING];
        spawner_conn *watched[SPAWNER_MAX_PENDING];
        unsigned parked, nw = 0;
        apr_time_t now = apr_time_now();
        int timeout = pool_expire(&pool, now);

        if (now >= next_sweep) {
            sweep_orphans(sh, s);
            next_sweep = now + apr_time_from_sec(SPAWNER_SWEEP_SECONDS);
        }
        timeout = sooner(timeout, next_sweep, now);
        if (refusals_deadline(&refused)) {
            timeout = sooner(timeout, refusals_deadline(&refused), now);
        }
        if (refusals_deadline(&dropped)) {
            timeout = sooner(timeout, refusals_deadline(&dropped), now);
        }
        pf[0].fd = sh->listen_fd;
        pf[0].events = POLLIN;
        pf[1].fd = sh->lifeline[0];
        pf[1].events = POLLIN;
        pf[2].fd = spawner_sig[0];
        pf[2].events = POLLIN;
        pf[3].fd = parent_fd;
        pf[3].events = POLLIN;
        parked = pool_watch(&pool, pf + 4);
        ws_table_set_gauge(sh->table, WS_STAT_POOL, parked);   /* for the status page */
        for (int i = 0; i < SPAWNER_MAX_PENDING; i++) {
            if (pending[i].fd >= 0) {
                pf[4 + parked + nw].fd = pending[i].fd;
                pf[4 + parked + nw].events = POLLIN;
                pf[4 + parked + nw].revents = 0;
                watched[nw++] = &pending[i];
                timeout = sooner(timeout, pending[i].until, now);
            }
        }
        if (poll(pf, 4 + parked + nw, timeout) < 0) {
            continue;
        }
        pool_check(&pool, pf + 4, parked);
        if (pf[2].revents) {
            unsigned char buf[64];
            while (read(spawner_sig[0], buf, sizeof(buf)) > 0) {
            }
            reap_keepers(sh, s);
        }
        if (pf[1].revents || pf[3].revents) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                         "WS01005: httpd is gone; spawner exits");
            _exit(0);
        }
        now = apr_time_now();
        for (unsigned i = 0; i < nw; i++) {
            spawner_conn *c = watched[i];

            if (c->fd < 0) {
                continue;
            }
            if (pf[4 + parked + i].revents) {
                conn_read(sh, s, uid, c);
            }
            if (c->fd >= 0 && now >= c->until) {
                conn_drop(s, c, "no whole request within " APR_STRINGIFY(SPAWNER_PENDING_MS)
                          " ms");
            }
        }
        refusals_flush(s, now);
        if (pf[0].revents & POLLIN) {
            accept_peers(sh, s, uid);
        }
    }
}

static apr_status_t fork_spawner(ws_shared *sh, server_rec *s, apr_pool_t *pconf);

static void spawner_maintenance(int reason, void *data, apr_wait_t status)
{
    ws_shared *sh = data;
    int mpm_state = AP_MPMQ_STARTING;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(sh);
        sh->proc.pid = 0;
        ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state);
        if (mpm_state != AP_MPMQ_STOPPING) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf,
                         "WS01006: spawner died (status %d); starting a new one",
                         (int)status);
            fork_spawner(sh, ap_server_conf, ap_server_conf->process->pconf);
        }
        break;
    default:
        /* restarts keep the spawner: it holds no configuration */
        break;
    }
}

static apr_status_t fork_spawner(ws_shared *sh, server_rec *s, apr_pool_t *pconf)
{
    pid_t pid = fork();

    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s,
                     "WS01007: cannot fork the spawner");
        return errno;
    }
    if (pid == 0) {
        spawner_main(sh, s, pconf);
        _exit(0);
    }
    sh->proc.pid = pid;
    apr_proc_other_child_register(&sh->proc, spawner_maintenance, sh, NULL, pconf);
    return APR_SUCCESS;
}

/* The restart reopened the error log: hand it to the spawner, which hands
 * it to the keepers (they were forked before and still hold the old one). */
static void hand_over_log(ws_shared *sh, server_rec *s)
{
    apr_os_file_t lf;
    char name[IPC_NAME_MAX];
    int fd;

    if (!s->error_log || apr_os_file_get(&lf, s->error_log) != APR_SUCCESS) {
        return;                 /* syslog: nothing to hand over */
    }
    ipc_spawner_name(name, &sh->names);
    fd = ipc_connect(name, 2000);
    if (fd < 0 || ipc_send_msg(fd, IPC_LOGFD, NULL, 0, lf) < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     "WS01009: could not hand the reopened error log to the spawner;"
                     " sessions started before this restart log to the old one");
    }
    if (fd >= 0) {
        close(fd);
    }
}

apr_status_t spawner_start(ws_shared *sh, server_rec *s, apr_pool_t *pconf)
{
    if (sh->proc.pid > 0 && kill(sh->proc.pid, 0) == 0) {
        /* Kept from before a graceful restart. */
        apr_proc_other_child_register(&sh->proc, spawner_maintenance, sh, NULL, pconf);
        hand_over_log(sh, s);
        return APR_SUCCESS;
    }
    return fork_spawner(sh, s, pconf);
}
