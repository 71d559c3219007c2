/* asan_exit.c -- linked into the AddressSanitizer build of the module only
 * (make asan), never into .libs/mod_websession.so.
 *
 * LeakSanitizer normally checks a process from an atexit handler, and the
 * spawner and the keepers never run one: they end with _exit().  A keeper
 * serves session after session (the keeper pool), so memory it loses per
 * session would pile up unseen.  The build links with -Wl,--wrap=_exit,
 * which sends every _exit() call of the module's own code here: a leak
 * check first (the report goes to the ASan log_path like any other), then
 * the real _exit with the same status.
 *
 * Not in a child a keeper forked to exec a script (keeper_script.c, for
 * scripts with resource limits): it only gets here when its exec failed,
 * its heap is the keeper's (checked when the keeper exits), and under an
 * RLimitMEM or RLimitNPROC the check itself could fail.  -Wl,--wrap=
 * keeper_main marks the processes that are keepers; a fork handler marks
 * their children.
 *
 * httpd's processes are not checked: they end with exit() and
 * t/setup/asan-httpd turns the check at exit off (leak_check_at_exit=0),
 * because httpd does not free its pools before it exits.  The check needs
 * detect_leaks=1, which that script also sets, and a dumpable process (it
 * stops the process with ptrace): see CoreDumpDirectory in
 * t/conf/extra.conf.in. */
#include <pthread.h>
#include <sanitizer/lsan_interface.h>

#include "keeper.h"

void __real__exit(int status) __attribute__((noreturn));
void __wrap__exit(int status) __attribute__((noreturn));
/* Declared with keeper_main's own type (keeper.h): when its parameters change,
 * the definition below no longer compiles, instead of calling the real one
 * with arguments missing. */
__typeof__(keeper_main) __real_keeper_main __attribute__((noreturn));
__typeof__(keeper_main) __wrap_keeper_main __attribute__((noreturn));

static int is_keeper;           /* this process runs keeper_main */
static int keeper_child;        /* a keeper forked this process */

static void on_fork_child(void)
{
    keeper_child = is_keeper;
}

/* glibc drops the handler when httpd unloads the module (a restart). */
__attribute__((constructor)) static void asan_exit_init(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

void __wrap_keeper_main(const keeper_env *env, int conn_fd, const ipc_header *first)
{
    is_keeper = 1;
    __real_keeper_main(env, conn_fd, first);
}

void __wrap__exit(int status)
{
    if (!keeper_child) {
        __lsan_do_recoverable_leak_check();
    }
    __real__exit(status);
}
