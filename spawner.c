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

#include "ipc.h"
#include "keeper.h"
#include "pool.h"
#include "spawner.h"

APLOG_USE_MODULE(websession);

static int spawner_sig[2] = { -1, -1 };
static int parent_fd = -1;      /* pidfd of httpd's parent */
static ws_pool pool;            /* keepers waiting for a session */

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

static void fork_keeper(ws_shared *sh, server_rec *s, int fd, uid_t uid)
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
        signal(SIGCHLD, SIG_DFL);
        env.table = sh->table;
        env.names = &sh->names;
        env.lifeline_fd = sh->lifeline[0];
        env.parent_fd = parent_fd;
        env.uid = uid;
        env.s = s;
        env.pool_token = pool.token;
        keeper_main(&env, fd);
    }
}

/* The kind of the message that opens conn, left in place; 0 if none came
 * in time or it is not one. */
static uint32_t peek_kind(int conn)
{
    struct pollfd pf = { conn, POLLIN, 0 };
    ipc_header h;
    int ready;

    do {
        ready = poll(&pf, 1, 200);      /* SIGCHLD interrupts it */
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0
        || recv(conn, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT) != (ssize_t)sizeof(h)
        || h.magic != IPC_MAGIC) {
        return 0;
    }
    return h.kind;
}

/* After a restart httpd's parent sends the reopened error log (conn starts
 * with IPC_LOGFD): use it, and pass it to every keeper. */
static void log_handover(ws_shared *sh, server_rec *s, int conn)
{
    uint32_t kind, len;
    int logfd = -1;
    apr_os_file_t cur;

    if (!ipc_peer_allowed(conn, 0)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS01011: refused a log descriptor from a process that is not root");
        return;
    }
    if (ipc_recv_header_any(conn, &kind, &len, &logfd) < 0 || logfd < 0) {
        if (logfd >= 0) {
            close(logfd);
        }
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

static void spawner_main(ws_shared *sh, server_rec *s, apr_pool_t *p)
{
    struct sigaction sa;
    uid_t uid;

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
    for (;;) {
        struct pollfd pf[4 + POOL_MAX];
        unsigned parked;
        int timeout = pool_expire(&pool, apr_time_now());

        pf[0].fd = sh->listen_fd;
        pf[0].events = POLLIN;
        pf[1].fd = sh->lifeline[0];
        pf[1].events = POLLIN;
        pf[2].fd = spawner_sig[0];
        pf[2].events = POLLIN;
        pf[3].fd = parent_fd;
        pf[3].events = POLLIN;
        parked = pool_watch(&pool, pf + 4);
        if (poll(pf, 4 + parked, timeout) < 0) {
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
        if (pf[0].revents & POLLIN) {
            int fd = accept4(sh->listen_fd, NULL, NULL, SOCK_CLOEXEC);

            if (fd >= 0) {
                uint32_t kind = peek_kind(fd);

                if (kind == IPC_IDLE) {
                    pool_park(&pool, fd, uid, s);
                    continue;
                }
                if (kind == IPC_LOGFD) {
                    log_handover(sh, s, fd);
                }
                else if (!pool_hand(&pool, fd)) {
                    fork_keeper(sh, s, fd, uid);
                }
                close(fd);
            }
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
