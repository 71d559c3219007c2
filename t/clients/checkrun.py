"""Bookkeeping shared by the test clients that report named checks
(tls_echo.py, v1_protocol.py, http_fallback.py, survival.py).

A client's Run class derives from CheckRun: it records each verdict with
check(name, ok, detail) (the first verdict for a name stands), runs its
steps with run_steps() (an exception ends that step only and is recorded
as an error) and ends with run_and_report(), which prints one line of JSON
  {"ok": bool, "checks": [{"name", "ok", "detail"}, ...], "errors": [...],
   "seconds": ...}
and gives the exit status: 0 when there are checks, every one passed and
nothing was recorded as an error, 1 otherwise.
"""

import asyncio
import json
import sys
import time


class CheckRun:
    detail_max = 400                  # characters of a detail that are kept

    def __init__(self, known=None):
        self.known = known            # the names check() takes; None: any
        self.results = {}             # name -> check, in the order made
        self.errors = []

    def check(self, name, ok, detail=""):
        assert self.known is None or name in self.known, name
        if name not in self.results:  # the first verdict stands
            self.results[name] = {"name": name, "ok": bool(ok),
                                  "detail": str(detail)[:self.detail_max]}
        return bool(ok)

    def error(self, where, e):
        self.errors.append("%s: %s: %s" % (where, type(e).__name__, e))

    async def run_steps(self, steps, timeout=None, only=None):
        """Await each step (a method) for at most `timeout` s; with `only`
        (method names, comma-separated) just those."""
        if only:
            steps = [s for s in steps if s.__name__ in only.split(",")]
        for step in steps:
            try:
                await asyncio.wait_for(step(), timeout)
            except Exception as e:    # report it, go on with the next step
                self.error(step.__name__, e)

    def summary(self, names=None):
        """(ok, checks): the checks named, in that order ("not reached"
        for those never made), or with names None all made, in order."""
        if names is None:
            checks = list(self.results.values())
        else:
            checks = [self.results.get(n, {"name": n, "ok": False, "detail": "not reached"})
                      for n in names]
        return bool(checks) and all(c["ok"] for c in checks) and not self.errors, checks


def emit(summary):
    print(json.dumps(summary))
    sys.stdout.flush()


def run_and_report(run, coro, deadline, names=None):
    """Run coro (run's main coroutine) for at most `deadline` s, print the
    JSON line for `names` (see CheckRun.summary), return the exit status."""
    t0 = time.monotonic()
    try:
        asyncio.run(asyncio.wait_for(coro, deadline))
    except asyncio.TimeoutError:
        run.errors.append("deadline of %g s passed" % deadline)
    ok, checks = run.summary(names)
    emit({"ok": ok, "checks": checks, "errors": run.errors,
          "seconds": round(time.monotonic() - t0, 2)})
    return 0 if ok else 1
