#!/usr/bin/env python3
"""bench/newsessions.py -- the report of `bench/run newsessions`: new-session
latency and rate of mod_websession with scripts started in a session of their
own (setsid) and in a process group of their own (setpgid), and websocketd,
measured in interleaved rounds.  Standard library only.

    newsessions.py RAW.jsonl        (markdown on stdout)

Ratios are "row / websocketd of the same round" (latency above 1.00x: slower
than websocketd; rate below 1.00x: fewer sessions/s), and setpgid / setsid
of the same round.  The summary gives the median over the rounds of each
figure and of each ratio, then the same over the quiet rounds only (the
CPUs at most 10% busy with other work in the second before each of its
runs).  Round 0 (the warm-up) is left out.
"""
import json
import statistics
import sys

PEERS = ("setsid", "setpgid", "websocketd")
KEYS = ("rate", "p50", "p90", "p99")
QUIET = 0.10        # a round is quiet when others used at most 10% of the CPUs before each run
NAMES = {
    "setsid": "mod_websession, script in its own session (setsid, as before)",
    "setpgid": "mod_websession, script in its own process group (setpgid)",
    "websocketd": "websocketd 0.4.1",
}


def ms(ns):
    return ns / 1e6


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def figures(rec):
    """(sessions/s, p50, p90, p99 in ms) of a run, or None if it failed."""
    res = rec.get("result")
    if rec["exit"] != 0 or not res or "session_ns" not in res:
        return None
    lat = res["session_ns"]
    return (res["sessions_per_s"], ms(lat["p50"]), ms(lat["p90"]), ms(lat["p99"]))


def main(path):
    runs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if rec["round"] > 0:
                    runs[(rec["round"], rec["peer"])] = rec
    rounds = sorted({r for r, _ in runs})
    if not rounds:
        print("no rounds measured")
        return 1

    w = print
    w("Peers:")
    w()
    for p in PEERS:
        w(f"- **{p}**: {NAMES[p]}")
    w()
    w("Each round runs `wsload connect -c C -s 64 -d T` against setsid, setpgid, websocketd in "
      "that order. A session is connect, upgrade, one 64-byte echo, close handshake, close; "
      "its latency is measured from connect to closed. *cpu busy* is the share of both CPUs' "
      "time not idle while the run lasted (every process on the machine, the benchmark's included); *others* the share "
      "busy in a second before the run that no server used, with the benchmark idle: other "
      "work on a shared machine. *load* is the load average before the run (the benchmark's own runs count "
      "in it).")
    w()
    w("| round | peer | sessions/s | p50 ms | p90 ms | p99 ms | cpu busy | others | load | "
      "rate / websocketd | p50 / websocketd | p99 / websocketd |")
    w("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for r in rounds:
        wd = figures(runs[(r, "websocketd")]) if (r, "websocketd") in runs else None
        for p in PEERS:
            rec = runs.get((r, p))
            f = figures(rec) if rec else None
            if f is None:
                why = "not run" if rec is None else f"failed (exit {rec['exit']})"
                w(f"| {r} | {p} | {why} | | | | | | | | | |")
                continue
            rr = [ratio(f[i], wd[i]) if wd else None for i in range(4)]
            w(f"| {r} | {p} | {fmt(f[0])} | {fmt(f[1], 2)} | {fmt(f[2], 2)} | {fmt(f[3], 2)} | "
              f"{rec['cpu_busy'] * 100:.0f}% | {rec.get('cpu_others', 0) * 100:.0f}% | "
              f"{rec['loadavg']} | {fmt_ratio(rr[0])} | "
              f"{fmt_ratio(rr[1])} | {fmt_ratio(rr[3])} |")
    w()
    summary(runs, rounds, f"Median of the {len(rounds)} rounds")
    quiet = [r for r in rounds
             if all((r, p) in runs and runs[(r, p)].get("cpu_others", 1) <= QUIET for p in PEERS)]
    if len(quiet) < len(rounds):
        w()
        if quiet:
            summary(runs, quiet, f"Median of the {len(quiet)} quiet rounds, those with others at most"
                                 f" {QUIET * 100:.0f}% before each run ({', '.join(map(str, quiet))})")
        else:
            w(f"No quiet round (others at most {QUIET * 100:.0f}% before each of its runs).")
    return 0


def summary(runs, rounds, title):
    w = print
    per = {p: [] for p in PEERS}
    ratios = {p: {k: [] for k in KEYS} for p in PEERS}
    pg_sid = {k: [] for k in KEYS}
    for r in rounds:
        fig = {p: figures(runs[(r, p)]) if (r, p) in runs else None for p in PEERS}
        wd = fig["websocketd"]
        for p in PEERS:
            f = fig[p]
            if f is None:
                continue
            per[p].append(f)
            if wd:
                for i, k in enumerate(KEYS):
                    ratios[p][k].append(f[i] / wd[i])
        if fig["setsid"] and fig["setpgid"]:
            for i, k in enumerate(KEYS):
                pg_sid[k].append(fig["setpgid"][i] / fig["setsid"][i])

    def med(xs):
        return statistics.median(xs) if xs else None

    w(f"{title}; each ratio is the median of the per-round ratios:")
    w()
    w("| peer | sessions/s | p50 ms | p90 ms | p99 ms | p99 range ms | "
      "rate / websocketd | p50 / websocketd | p90 / websocketd | p99 / websocketd |")
    w("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for p in PEERS:
        fs = per[p]
        if not fs:
            w(f"| {p} | no run succeeded | | | | | | | | |")
            continue
        cols = [med([f[i] for f in fs]) for i in range(4)]
        p99s = [f[3] for f in fs]
        w(f"| {p} | {fmt(cols[0])} | {fmt(cols[1], 2)} | {fmt(cols[2], 2)} | {fmt(cols[3], 2)} | "
          f"{fmt(min(p99s), 2)}-{fmt(max(p99s), 2)} | "
          + " | ".join(fmt_ratio(med(ratios[p][k])) for k in KEYS) + " |")
    w()
    w("setpgid / setsid (median of the per-round ratios): "
      + ", ".join(f"{k} {fmt_ratio(med(v))}" for k, v in pg_sid.items()) + ".")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
