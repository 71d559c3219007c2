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
 * httpd's processes are not checked: they end with exit() and
 * t/setup/asan-httpd turns the check at exit off (leak_check_at_exit=0),
 * because httpd does not free its pools before it exits.  The check needs
 * detect_leaks=1, which that script also sets, and a dumpable process (it
 * stops the process with ptrace): see CoreDumpDirectory in
 * t/conf/extra.conf.in. */
#include <sanitizer/lsan_interface.h>

void __real__exit(int status) __attribute__((noreturn));
void __wrap__exit(int status) __attribute__((noreturn));

void __wrap__exit(int status)
{
    __lsan_do_recoverable_leak_check();
    __real__exit(status);
}
