/* keeper_script.c -- the script: starting it, its stdin/stdout/stderr pipes,
 * reaping it and reporting how it ended. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "http_log.h"

#include "keeper_session.h"

APLOG_USE_MODULE(websession);

void signal_script(keeper *k, int sig)
{
    if (k->script_pid > 0) {
        kill(-k->script_pid, sig);      /* the whole process group */
        kill(k->script_pid, sig);
        if (sig == SIGTERM) {
            /* A stopped process sees SIGTERM only once it runs again, and
             * in the keeper's session the group is not orphaned, so SIGTSTP
             * does stop it. */
            kill(-k->script_pid, SIGCONT);
            kill(k->script_pid, SIGCONT);
        }
    }
}

/* A client message for the script.  -1 if the session must close. */
int deliver(keeper *k, int binary, const unsigned char *data, size_t len)
{
    char hdr[MSG_MAX_HEADER];
    size_t h;

    if (k->cfg.mode == MSG_LINES && binary) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                     "WS02011: [%s] binary message refused in lines mode", k->fp);
        queue_close(k, WS_CLOSE_UNSUPPORTED, LINES_BINARY);
        end_after_close(k, "client sent a binary message in lines mode");
        return -1;
    }
    k->client_spoke = 1;
    k->stats.msgs_in++;
    k->stats.bytes_in += len;
    h = msg_encode_header(k->cfg.mode, binary, len, hdr);
    bytebuf_append(&k->to_script, hdr, h);
    bytebuf_append(&k->to_script, data, len);
    bytebuf_append(&k->to_script, MSG_TRAILER, 1);
    return 0;
}

/* ---- the script ------------------------------------------------------- */

static void script_stdout(keeper *k, const unsigned char *p, size_t n, int eof)
{
    msg_event ev;

    for (;;) {
        size_t used = 0;
        msg_event_type t;

        if (n > 0) {
            t = msg_reader_feed(k->reader, p, n, &used, &ev);
            p += used;
            n -= used;
        }
        else if (eof) {
            t = msg_reader_finish(k->reader, &ev);
            eof = 0;
        }
        else {
            return;
        }
        if (t == MSG_EV_MESSAGE) {
            int binary = ev.binary;

            if (!binary && !ws_utf8_valid(ev.data, ev.len)) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, k->env->s,
                             "WS02020: [%s] script wrote a text message that is not UTF-8;"
                             " sent as binary", k->fp);
                binary = 1;
            }
            queue_data(k, binary, ev.data, ev.len);
        }
        else if (t == MSG_EV_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                         "WS02021: [%s] bad output from the script: %s", k->fp, ev.reason);
            queue_close(k, WS_CLOSE_INTERNAL, ev.reason);
            begin_end(k, "script output could not be parsed");
            k->stdout_eof = 1;
            return;
        }
    }
}

static void log_stderr_lines(keeper *k, int flush)
{
    size_t start = 0;

    for (size_t i = 0; i < k->errlen; i++) {
        if (k->errline[i] == '\n') {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                         "WS02022: [%s] script stderr: %.*s", k->fp,
                         (int)(i - start), k->errline + start);
            start = i + 1;
        }
    }
    if (start == 0 && (flush || k->errlen == sizeof(k->errline)) && k->errlen) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, k->env->s,
                     "WS02022: [%s] script stderr: %.*s", k->fp,
                     (int)k->errlen, k->errline);
        start = k->errlen;
    }
    memmove(k->errline, k->errline + start, k->errlen - start);
    k->errlen -= start;
}

void read_stderr(keeper *k)
{
    ssize_t n = read(k->serr, k->errline + k->errlen, sizeof(k->errline) - k->errlen);

    if (n > 0) {
        k->errlen += (size_t)n;
        log_stderr_lines(k, 0);
    }
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        log_stderr_lines(k, 1);
        keeper_close(k, &k->serr);
    }
}

/* Reads at most `most` bytes (> 0).  Returns 1 after reading data, 0 at
 * EOF, -1 when nothing is there yet. */
int read_stdout(keeper *k, size_t most)
{
    unsigned char buf[READ_CHUNK];
    ssize_t n;
    int again;

    if (most == 0) {
        return -1;              /* no room: read nothing, and it is not EOF */
    }
    n = read(k->sout, buf, most < sizeof(buf) ? most : sizeof(buf));
    again = n < 0 && (errno == EAGAIN || errno == EINTR);

    if (n > 0 && !session_over(k)) {
        script_stdout(k, buf, (size_t)n, 0);
    }
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        script_stdout(k, NULL, 0, 1);
        k->stdout_eof = 1;
    }
    if (k->stdout_eof && k->sout >= 0) {
        keeper_close(k, &k->sout);
    }
    return n > 0 ? 1 : again ? -1 : 0;
}

void reap(keeper *k)
{
    int st;

    while (k->script_pid > 0 && !k->reaped) {
        pid_t p = waitpid(k->script_pid, &st, WNOHANG);

        if (p == k->script_pid) {
            k->reaped = 1;
            k->wait_status = st;
            if (session_over(k)) {
                sess_set(k, SESS_DONE, "script reaped");
            }
            /* Everything it wrote is in the pipe now; a descendant that
             * still holds the pipe open does not keep the session going. */
            while (k->sout >= 0) {
                if (read_stdout(k, READ_CHUNK) < 0) {
                    script_stdout(k, NULL, 0, 1);
                    keeper_close(k, &k->sout);
                }
            }
        }
        else if (p < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
}

/* The script exited and its output is read: tell the client how it ended. */
void script_finished(keeper *k)
{
    char reason[100];
    unsigned code = ws_exit_close(k->wait_status, reason, sizeof(reason));

    ap_log_error(APLOG_MARK, APLOG_INFO, 0, k->env->s,
                 "WS02023: [%s] %s", k->fp, reason);
    if (!k->close_queued && !session_over(k)) {
        queue_close_how(k, code, reason, 1);     /* after everything it wrote */
    }
}

/* What the script's process was doing when it failed before exec. */
enum { STAGE_EXEC = 0, STAGE_RLIMIT = 1 /* + IPC_RLIMIT_* */ };

typedef struct {
    int stage;
    int err;
} child_failure;

static const char *const rlimit_directive[IPC_RLIMIT_COUNT] = {
    [IPC_RLIMIT_CPU] = "RLimitCPU",
    [IPC_RLIMIT_MEM] = "RLimitMEM",
    [IPC_RLIMIT_NPROC] = "RLimitNPROC",
};

/* RLimitMEM is the address space, as APR's apr_procattr_limit_set makes it
 * for mod_cgid where RLIMIT_AS exists. */
static const int rlimit_resource[IPC_RLIMIT_COUNT] = {
    [IPC_RLIMIT_CPU] = RLIMIT_CPU,
    [IPC_RLIMIT_MEM] = RLIMIT_AS,
    [IPC_RLIMIT_NPROC] = RLIMIT_NPROC,
};

/* fd becomes the descriptor to (0, 1 or 2), open across exec. */
static int child_fd(int fd, int to)
{
    if (fd == to) {
        return fcntl(fd, F_SETFD, 0);
    }
    return dup2(fd, to) < 0 ? -1 : 0;
}

/* The script's process between fork and exec: what posix_spawn does for the
 * other path (a session of its own, every signal at its default and none
 * blocked, the pipes on 0-2, the working directory), plus the resource
 * limits, set here so that they hold from the first instruction of the
 * script on.  Only system calls; a failure goes to status_fd. */
static __attribute__((noreturn)) void script_child(const keeper *k, const int fds[3],
                                                   int status_fd, char *const argv[],
                                                   char *const envp[], const char *cwd)
{
    child_failure f = { STAGE_EXEC, 0 };
    struct sigaction dfl;
    sigset_t none;

#ifdef KEEPER_SCRIPT_SETSID
    setsid();                   /* bench/run only (make SCRIPT_SETSID=1) */
#else
    setpgid(0, 0);              /* a new group, led by the script (start_script) */
#endif
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigaction(sig, &dfl, NULL) < 0 && sig != SIGKILL && sig != SIGSTOP) {
            /* glibc keeps two real-time signals for itself and refuses them;
             * one ignored by whoever started httpd would stay ignored across
             * execve, so reset it with the system call itself, as
             * posix_spawn's POSIX_SPAWN_SETSIGDEF does (all-zero: SIG_DFL,
             * no flags, empty mask). */
            unsigned long kact[4] = { 0, 0, 0, 0 };

            syscall(SYS_rt_sigaction, sig, kact, NULL, (size_t)8);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (child_fd(fds[i], i) < 0) {
            goto fail;
        }
    }
    if (cwd[0] && chdir(cwd) < 0) {
        goto fail;
    }
    for (int i = 0; i < IPC_RLIMIT_COUNT; i++) {
        struct rlimit rl;

        if (!(k->cfg.rlimit_set & (1u << i))) {
            continue;
        }
        rl.rlim_cur = (rlim_t)k->cfg.rlimit[i][0];
        rl.rlim_max = (rlim_t)k->cfg.rlimit[i][1];
        if (setrlimit(rlimit_resource[i], &rl) < 0) {
            f.stage = STAGE_RLIMIT + i;
            goto fail;
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
fail:
    f.err = errno;
    if (write(status_fd, &f, sizeof(f)) < 0) {
        /* the keeper sees a short read: an unknown failure */
    }
    _exit(127);
}

/* fork and exec, for a script with resource limits (posix_spawn cannot set
 * them, and setting them in the keeper around posix_spawn would limit the
 * keeper too: an RLIMIT_CPU below the CPU time it has used kills it, and a
 * lowered hard limit cannot be raised again).  A close-on-exec status pipe
 * reports a failure before exec synchronously.  err 0 with *pid, else the
 * failure. */
static child_failure fork_script(const keeper *k, const int fds[3], char *const argv[],
                                 char *const envp[], const char *cwd, pid_t *pid)
{
    child_failure f = { STAGE_EXEC, 0 };
    sigset_t all, old;
    int status[2];
    ssize_t n;

    if (pipe2(status, O_CLOEXEC) < 0) {
        f.err = errno;
        return f;
    }
    /* No handler of the keeper's may run in the child before its reset. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    *pid = fork();
    if (*pid == 0) {
        close(status[0]);
        script_child(k, fds, status[1], argv, envp, cwd);
    }
    if (*pid < 0) {
        f.err = errno;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(status[1]);
    if (*pid > 0) {
        do {
            n = read(status[0], &f, sizeof(f));
        } while (n < 0 && errno == EINTR);
        if (n != 0) {
            if (n != (ssize_t)sizeof(f) || f.err == 0) {
                f.stage = STAGE_EXEC;
                f.err = EIO;        /* (the child died before it could say why) */
            }
            while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR) {
            }
        }
    }
    close(status[0]);
    return f;
}

/* posix_spawn (vfork semantics) copies no page tables and reports an exec
 * failure synchronously: the way for a script without resource limits.
 * err 0 with *pid, else the failure. */
/* KEEPER_SCRIPT_SETSID is for bench/run only (make SCRIPT_SETSID=1): the old
 * way, each script in a session of its own, to measure against. */
#ifdef KEEPER_SCRIPT_SETSID
#define SCRIPT_SPAWN_GROUP POSIX_SPAWN_SETSID
#else
#define SCRIPT_SPAWN_GROUP POSIX_SPAWN_SETPGROUP
#endif

static child_failure spawn_script(const int fds[3], char *const argv[], char *const envp[],
                                  const char *cwd, pid_t *pid)
{
    child_failure f = { STAGE_EXEC, 0 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[2], 2);
    if (cwd[0]) {
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    }
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);      /* a new group, led by the script */
    posix_spawnattr_setflags(&at, SCRIPT_SPAWN_GROUP | POSIX_SPAWN_SETSIGMASK
                                  | POSIX_SPAWN_SETSIGDEF);
    f.err = posix_spawn(pid, argv[0], &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return f;
}

/* Start the script: its own process group (setpgid(0, 0): the group's id is
 * the script's pid, so signal_script reaches everything it started), in the
 * keeper's session, signals at their defaults, stdin/stdout/stderr on pipes,
 * and the resource limits of its scope (RLimitCPU, RLimitMEM, RLimitNPROC),
 * which only it gets, never the keeper.  Not its own session: each session
 * is a scheduler autogroup of its own, and with both cores busy every newly
 * started script then ran ahead of those already running
 * (docs/ARCHITECTURE.md).  Returns 0, or -1 with msg filled. */
int start_script(keeper *k, char *const argv[], char *const envp[],
                        const char *cwd, char *msg, size_t msglen)
{
    int in[2], out[2], err[2], fds[3];
    child_failure f;
    pid_t pid = -1;

    if (pipe2(in, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;              /* the keeper exits: its descriptors go with it */
    }
    fds[0] = in[0];
    fds[1] = out[1];
    fds[2] = err[1];
    f = k->cfg.rlimit_set ? fork_script(k, fds, argv, envp, cwd, &pid)
                          : spawn_script(fds, argv, envp, cwd, &pid);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (f.err != 0) {
        if (f.stage >= STAGE_RLIMIT && f.stage < STAGE_RLIMIT + IPC_RLIMIT_COUNT) {
            int i = f.stage - STAGE_RLIMIT;

            snprintf(msg, msglen, "cannot apply %s %llu %llu to %s: %s", rlimit_directive[i],
                     (unsigned long long)k->cfg.rlimit[i][0],
                     (unsigned long long)k->cfg.rlimit[i][1], argv[0], strerror(f.err));
        }
        else {
            snprintf(msg, msglen, "cannot execute %s: %s", argv[0], strerror(f.err));
        }
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -1;
    }
    k->script_pid = pid;
    k->sin = in[1];
    k->sout = out[0];
    k->serr = err[0];
    set_nonblock(k->sin);
    set_nonblock(k->sout);
    set_nonblock(k->serr);
    return 0;
}

void flush_script(keeper *k)
{
    bytebuf *b = &k->to_script;

    while (k->sin >= 0 && bytebuf_pending(b)) {
        ssize_t n = write(k->sin, b->data + b->off, bytebuf_pending(b));

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            /* The script closed its stdin: what is pending cannot arrive. */
            ap_log_error(APLOG_MARK, APLOG_INFO, errno, k->env->s,
                         "WS02024: [%s] script no longer reads stdin; %lu bytes undelivered",
                         k->fp, (unsigned long)bytebuf_pending(b));
            keeper_close(k, &k->sin);
            bytebuf_clear(b);
            return;
        }
        bytebuf_consume(b, (size_t)n);
    }
}
