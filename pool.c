/* pool.c -- keepers parked at the spawner between sessions. */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_general.h"
#include "apr_portable.h"

#include "ipc.h"
#include "pool.h"
#include "session_table.h"

APLOG_USE_MODULE(websession);

/* Both sides answer at once; this only bounds a peer that does not. */
#define POOL_IO_TIMEOUT_MS 1000

/* The error log's descriptor and identity; -1 and zeros without a file. */
static int log_identity(server_rec *s, uint64_t *dev, uint64_t *ino)
{
    apr_os_file_t fd;
    struct stat st;

    *dev = *ino = 0;
    if (!s->error_log || apr_os_file_get(&fd, s->error_log) != APR_SUCCESS
        || fd < 0 || fstat(fd, &st) < 0) {
        return -1;
    }
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    return fd;
}

/* ---- the spawner's side ------------------------------------------------ */

apr_status_t pool_init(ws_pool *p)
{
    memset(p, 0, sizeof(*p));
    return apr_generate_random_bytes(p->token, sizeof(p->token));
}

/* Close parked connection i (its keeper exits, or has one to serve) and
 * close the gap, keeping the order of parking. */
static void drop(ws_pool *p, unsigned i)
{
    close(p->fd[i]);
    p->n--;
    memmove(p->fd + i, p->fd + i + 1, (p->n - i) * sizeof(p->fd[0]));
    memmove(p->since + i, p->since + i + 1, (p->n - i) * sizeof(p->since[0]));
}

/* 1 if the offer comes from one of our keepers. */
static int valid_offer(const ws_pool *p, const ipc_idle *idle)
{
    return ws_ct_equal(idle->token, p->token, sizeof(p->token));
}

void pool_park(ws_pool *p, int conn, const ipc_idle *idle, server_rec *s)
{
    uint64_t dev, ino;
    int logfd;

    if (!valid_offer(p, idle)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "WS04001: spawner refused an offer to serve sessions that did not"
                     " come from one of its keepers");
        close(conn);
        return;
    }
    if (p->n == POOL_MAX) {
        close(conn);            /* enough are waiting: this keeper exits */
        return;
    }
    ipc_set_timeouts(conn, POOL_IO_TIMEOUT_MS);
    logfd = log_identity(s, &dev, &ino);
    if (logfd >= 0 && (dev != idle->log_dev || ino != idle->log_ino)
        && ipc_send_msg(conn, IPC_LOGFD, NULL, 0, logfd) < 0) {
        close(conn);
        return;
    }
    p->fd[p->n] = conn;
    p->since[p->n] = apr_time_now();
    p->n++;
}

int pool_hand(ws_pool *p, int conn, const ipc_header *first)
{
    while (p->n) {
        unsigned last = p->n - 1;
        int taken = ipc_send_msg(p->fd[last], IPC_TAKE, first, sizeof(*first), conn) == 0;

        drop(p, last);          /* it has a session now, or it is gone */
        if (taken) {
            return 1;
        }
    }
    return 0;
}

unsigned pool_watch(const ws_pool *p, struct pollfd *pf)
{
    for (unsigned i = 0; i < p->n; i++) {
        pf[i].fd = p->fd[i];
        pf[i].events = POLLIN;
        pf[i].revents = 0;
    }
    return p->n;
}

void pool_check(ws_pool *p, const struct pollfd *pf, unsigned n)
{
    /* A parked keeper sends nothing: anything readable is its end. */
    for (unsigned i = n; i-- > 0; ) {
        if (pf[i].revents) {
            drop(p, i);
        }
    }
}

int pool_expire(ws_pool *p, apr_time_t now)
{
    apr_interval_time_t idle = apr_time_from_sec(POOL_IDLE_SECONDS);

    while (p->n && now - p->since[0] >= idle) {
        drop(p, 0);
    }
    if (!p->n) {
        return -1;
    }
    return (int)((p->since[0] + idle - now) / 1000) + 1;
}

void pool_send_log(ws_pool *p, int logfd)
{
    for (unsigned i = p->n; i-- > 0; ) {
        if (ipc_send_msg(p->fd[i], IPC_LOGFD, NULL, 0, logfd) < 0) {
            drop(p, i);
        }
    }
}

void pool_forget(ws_pool *p)
{
    for (unsigned i = 0; i < p->n; i++) {
        close(p->fd[i]);
    }
    p->n = 0;
}

/* ---- the keeper's side ------------------------------------------------- */

/* 1 if the signal self-pipe brought SIGTERM (other signals are the ends of
 * scripts already reaped). */
static int got_sigterm(int sig_fd)
{
    unsigned char sigs[64];
    ssize_t n;
    int term = 0;

    while ((n = read(sig_fd, sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            term |= sigs[i] == SIGTERM;
        }
    }
    return term;
}

int pool_rejoin(const keeper_env *env, int sig_fd, ipc_header *first)
{
    char name[IPC_NAME_MAX];
    ipc_idle idle;
    int fd;

    if (got_sigterm(sig_fd)) {
        return -1;
    }
    memset(&idle, 0, sizeof(idle));
    memcpy(idle.token, env->pool_token, sizeof(idle.token));
    log_identity(env->s, &idle.log_dev, &idle.log_ino);
    ipc_spawner_name(name, env->names);
    fd = ipc_connect(name, POOL_IO_TIMEOUT_MS);
    if (fd < 0) {
        return -1;
    }
    if (ipc_send_msg(fd, IPC_IDLE, &idle, sizeof(idle), -1) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        struct pollfd pf[4];
        uint32_t kind, len;
        int passed = -1;

        pf[0].fd = fd;
        pf[1].fd = env->lifeline_fd;
        pf[2].fd = env->parent_fd;
        pf[3].fd = sig_fd;
        for (int i = 0; i < 4; i++) {
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        if (poll(pf, 4, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pf[1].revents || pf[2].revents || (pf[3].revents && got_sigterm(sig_fd))) {
            break;
        }
        if (!pf[0].revents) {
            continue;
        }
        if (ipc_recv_header_any(fd, &kind, &len, &passed) < 0 || passed < 0
            || len != (kind == IPC_TAKE ? sizeof(*first) : 0)
            || (len && ipc_read_full(fd, first, len, NULL) < 0)) {
            if (passed >= 0) {
                close(passed);
            }
            break;              /* EOF: retired, refused, or the spawner is gone */
        }
        if (kind == IPC_TAKE) {
            close(fd);
            return passed;
        }
        if (kind != IPC_LOGFD) {
            close(passed);
            break;
        }
        keeper_adopt_log(env->s, passed);
    }
    close(fd);
    return -1;
}
