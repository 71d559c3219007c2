#!/usr/bin/env python3
"""bench/report.py -- turn bench/run's raw wsload lines into results.md and
results.json.  Standard library only.

    report.py META.json RAW.jsonl OUT.md OUT.json

Ratios are always "peer / mod_websession (bench/echo)" of the same figure:
for latencies below 1 means the peer is faster, for rates above 1 means the
peer is faster.
"""
import json
import sys

BASE = "websession"
PEERS = [
    ("websession", "mod_websession, lines, bench/echo"),
    ("websession-cat", "mod_websession, lines, /bin/cat"),
    ("websession-tls", "mod_websession over TLS (worker relays), bench/echo"),
    ("websocketd", "websocketd 0.4.1 + bench/echo"),
    ("proxy", "Apache mod_proxy (ws://) -> websocketd + bench/echo"),
    ("lua", "Apache mod_lua r:wsupgrade echo (in the worker)"),
    ("tcpecho", "plain TCP echo, no WebSocket (floor)"),
]
NAMES = dict(PEERS)

WORKLOADS = [
    ("rtt64", "64-byte round trips, 1 connection, one message in flight"),
    ("tp64", "Throughput: 64 connections x 16 in flight, 64-byte messages"),
    ("tp4k", "Throughput: 64 connections x 16 in flight, 4 KiB messages"),
    ("big", "1 MiB messages: round trips on 1 connection"),
    ("connect", "New sessions per second (connect, upgrade, one echo, close; 8 at a time)"),
]


def load(raw_path):
    runs = {}
    with open(raw_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            runs[(rec["peer"], rec["workload"])] = rec
    # rtt64 runs several times ("rtt64#1", ...): the table uses the run with
    # the median p50 and lists every run's p50.
    peers = {k[0] for k in runs}
    for p in peers:
        reps = [runs[k] for k in sorted(runs) if k[0] == p and k[1].startswith("rtt64#")]
        ok = [r for r in reps if failure(r) is None]
        if not reps:
            continue
        if ok:
            ok.sort(key=lambda r: r["result"]["rtt_ns"]["p50"])
            best = dict(ok[(len(ok) - 1) // 2])
        else:
            best = dict(reps[0])
        best["p50_runs_us"] = [us(r["result"]["rtt_ns"]["p50"]) if failure(r) is None else None
                               for r in reps]
        runs[(p, "rtt64")] = best
    return runs


def us(ns):
    return ns / 1000.0


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def ratio(peer_v, base_v):
    if peer_v is None or base_v in (None, 0):
        return None
    return peer_v / base_v


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def failure(rec):
    """Why a run has no figures, or None when it has."""
    if rec is None:
        return "not run"
    if rec["exit"] == -1:
        return "skipped"
    res = rec.get("result")
    if rec["exit"] != 0 or not res:
        err = (res or {}).get("first_error") if isinstance(res, dict) else None
        return "failed" + (f": {err}" if err else f" (exit {rec['exit']})")
    return None


def figures(rec, work):
    """The numbers of one run as a flat dict, or None."""
    if failure(rec):
        return None
    r = rec["result"]
    out = {}
    lat = r.get("rtt_ns") or r.get("session_ns") or {}
    for k in ("p50", "p90", "p99", "max", "mean"):
        if k in lat:
            out[k + "_us"] = us(lat[k])
    if work == "connect":
        out["sessions_per_s"] = r.get("sessions_per_s")
        out["sessions"] = r.get("sessions")
    else:
        out["msgs_per_s"] = r.get("msgs_per_s")
        out["mb_per_s"] = r.get("mb_per_s")
        out["messages"] = r.get("messages")
    out["samples"] = lat.get("samples")
    return out


def main():
    meta_path, raw_path, md_path, json_path = sys.argv[1:5]
    with open(meta_path) as f:
        meta = json.load(f)
    runs = load(raw_path)
    peers_run = [p for p, _ in PEERS if any(k[0] == p for k in runs)]
    res = {"machine": meta, "ratio": "peer / mod_websession (bench/echo) of the same figure",
           "workloads": {}, "idle": {}, "maxidle": None, "targets": []}
    md = []
    w = md.append

    w("# mod_websession benchmarks against its peers")
    w("")
    w(f"One run of `{meta['command']}` on {meta['date']} (module commit {meta['commit']}), "
      f"{meta['seconds']} s in all.")
    w("")
    w("**Noise.** This machine has "
      f"{meta['nproc']} cores and is shared: other engineers run test suites on it at the "
      "same time, and the load generator, the server and the scripts all compete for those "
      "cores. Figures can move by tens of percent from one run to the next; treat single "
      f"numbers with care. Load average at the start: {meta['loadavg_start']}, at the end: "
      f"{meta['loadavg_end']}.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    w(f"| CPU | {meta['nproc']} x {meta['model']} |")
    w(f"| memory | {meta['mem_kb'] / 1048576:.1f} GiB |")
    w(f"| OS, kernel | {meta['os']}, Linux {meta['kernel']} (cpuidle driver: {meta.get('cpuidle', 'unknown')}) |")
    w(f"| httpd | {meta['httpd']} (event MPM, 2 children x 96 threads, LogLevel warn, no access log) |")
    w(f"| websocketd | {meta['websocketd']} (Debian package) |")
    w(f"| OpenSSL | {meta['openssl']} |")
    w("")
    w("## How it was run")
    w("")
    w("```sh")
    w("make            # .libs/mod_websession.so")
    w(f"{meta['command']}       # as root")
    w("```")
    w("")
    k = meta["knobs"]
    w(f"Settings: RTT_COUNT={k['RTT_COUNT']}, TP_SECONDS={k['TP_SECONDS']}, "
      f"TP4K_SECONDS={k['TP4K_SECONDS']}, BIG_COUNT={k['BIG_COUNT']}, "
      f"CONNECT_SECONDS={k['CONNECT_SECONDS']}, IDLE_SESSIONS={k['IDLE_SESSIONS']}, "
      f"MAX_SESSIONS={k['MAX_SESSIONS']}, RESUME_ROUNDS={k.get('RESUME_ROUNDS', 'n/a')}. "
      "Everything on 127.0.0.1; each server is started "
      "and stopped by bench/run with its own configuration. The client is bench/wsload "
      "(C, one thread, epoll, the project's RFC 6455 codec, every echo checked byte for "
      "byte). Round trips are measured per message (send to complete echo) in ns; "
      "percentiles are exact (all samples sorted, nearest rank). Throughput counts echoed "
      "messages in the measured window after a 1 s warm-up; MB/s is echoed payload, one "
      "direction, 10^6 bytes. The rtt workloads skip 100 (1 MiB: 5) warm-up round trips.")
    w("")
    w("Peers:")
    w("")
    for p, name in PEERS:
        if p in peers_run:
            w(f"- **{p}**: {name}")
    if not meta.get("tls_measured"):
        w("- TLS: not measured (wsload was built without OpenSSL).")
    w("")
    w("Ratio columns are *peer / mod_websession (bench/echo)* of the same figure: for "
      "latencies below 1.00x means the peer is faster, for rates above 1.00x means the peer "
      "is faster.")
    w("")

    for work, title in WORKLOADS:
        base = figures(runs.get((BASE, work)), work)
        table = {}
        w(f"## {title}")
        w("")
        if work == "connect":
            w("| peer | sessions/s | ratio | session p50 ms | p99 ms |")
            w("| --- | ---: | ---: | ---: | ---: |")
        elif work == "rtt64":
            note = ""
            if meta.get("cpuidle") == "haltpoll":
                note = (" This is a VM with the guest haltpoll cpuidle driver: a wake-up on a "
                        "vCPU that has gone idle costs tens of microseconds, so the latency of "
                        "one connection (a chain of wake-ups through several processes) is "
                        "bimodal and the same server can measure several times slower from "
                        "one run to the next.")
            w(f"{meta['knobs'].get('RTT_RUNS', 1)} runs of {meta['knobs']['RTT_COUNT']:,} round "
              "trips each; the row is the run with the median p50, the last column lists the "
              "p50 of every run." + note)
            w("")
            w("| peer | p50 us | p90 us | p99 us | max us | p50 ratio | p99 ratio | p50 of each run |")
            w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        elif work == "big":
            w("| peer | round trips/s | MB/s | ratio (MB/s) | p50 ms | p99 ms | max ms |")
            w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        else:
            w("| peer | messages/s | MB/s | ratio (msgs/s) | round trip p50 ms | p99 ms |")
            w("| --- | ---: | ---: | ---: | ---: | ---: |")
        for p in peers_run:
            rec = runs.get((p, work))
            why = failure(rec)
            fig = figures(rec, work)
            table[p] = fig if fig else {"error": why}
            if why:
                if p == "lua" and work == "big":
                    why = "skipped: mod_lua drops frames of 64 KiB and more"
                ncols = {"connect": 5, "rtt64": 8, "big": 7}.get(work, 6)
                w(f"| {p} | {why} |" + " |" * (ncols - 2))
                continue
            if work == "connect":
                r = ratio(fig["sessions_per_s"], base and base["sessions_per_s"])
                fig["ratio"] = r
                w(f"| {p} | {fmt(fig['sessions_per_s'])} | {fmt_ratio(r)} | "
                  f"{fmt(fig['p50_us'] / 1000, 2)} | {fmt(fig['p99_us'] / 1000, 2)} |")
            elif work == "rtt64":
                r = ratio(fig["p50_us"], base and base["p50_us"])
                r99 = ratio(fig["p99_us"], base and base["p99_us"])
                fig["ratio_p50"], fig["ratio_p99"] = r, r99
                fig["p50_runs_us"] = rec.get("p50_runs_us")
                runs_txt = ", ".join(fmt(v) for v in (rec.get("p50_runs_us") or []))
                w(f"| {p} | {fmt(fig['p50_us'])} | {fmt(fig['p90_us'])} | {fmt(fig['p99_us'])} | "
                  f"{fmt(fig['max_us'])} | {fmt_ratio(r)} | {fmt_ratio(r99)} | {runs_txt} |")
            elif work == "big":
                r = ratio(fig["mb_per_s"], base and base["mb_per_s"])
                fig["ratio"] = r
                w(f"| {p} | {fmt(fig['msgs_per_s'])} | {fmt(fig['mb_per_s'])} | {fmt_ratio(r)} | "
                  f"{fmt(fig['p50_us'] / 1000, 2)} | {fmt(fig['p99_us'] / 1000, 2)} | "
                  f"{fmt(fig['max_us'] / 1000, 2)} |")
            else:
                r = ratio(fig["msgs_per_s"], base and base["msgs_per_s"])
                fig["ratio"] = r
                w(f"| {p} | {fmt(fig['msgs_per_s'])} | {fmt(fig['mb_per_s'])} | {fmt_ratio(r)} | "
                  f"{fmt(fig['p50_us'] / 1000, 2)} | {fmt(fig['p99_us'] / 1000, 2)} |")
        res["workloads"][work] = table
        w("")

    # ---- memory per idle session ------------------------------------------
    w("## Memory per idle session, and worker threads held")
    w("")
    ws = runs.get((BASE, "idle"))
    wsd = runs.get(("websocketd", "idle"))
    mem = {}
    if ws and ws["exit"] == 0:
        r = ws["result"]
        n = r["open"]["opened"] or 1
        b, a = r["before"], r["after"]
        httpd_before = b["parent_kb"] + b["children_kb"] + b["spawner_kb"]
        httpd_after = a["parent_kb"] + a["children_kb"] + a["spawner_kb"]
        beyond = httpd_after + a["keepers_kb"] - httpd_before - b["keepers_kb"]
        incl = beyond + a["scripts_kb"] - b["scripts_kb"]
        mem["websession"] = {
            "sessions": n,
            "per_session_kib_beyond_script": beyond / n,
            "per_session_kib_including_script": incl / n,
            "keeper_kib": a["keepers_kb"] / max(a["keepers"], 1),
            "script_kib": a["scripts_kb"] / max(a["scripts"], 1),
            "httpd_delta_kib": httpd_after - httpd_before,
            "busy_workers": r.get("busy_workers"),
            "running_worker_threads": r.get("running_worker_threads"),
            "before": b, "after": a,
        }
        m = mem["websession"]
        w(f"{n} idle sessions held open to mod_websession (bench/echo), each proven live by "
          "one echo. PSS from /proc/PID/smaps_rollup of every process: httpd's parent, its "
          "children, the spawner, the keepers and the scripts, before and after; the "
          "difference divided by the number of sessions.")
        w("")
        w("| | per session |")
        w("| --- | ---: |")
        w(f"| PSS beyond the script (keeper + growth of httpd and spawner) | "
          f"**{m['per_session_kib_beyond_script']:.0f} KiB** |")
        w(f"| PSS including the script | {m['per_session_kib_including_script']:.0f} KiB |")
        w(f"| average keeper process | {m['keeper_kib']:.0f} KiB ({a['keepers']} keepers) |")
        w(f"| average script process (bench/echo) | {m['script_kib']:.0f} KiB ({a['scripts']} scripts) |")
        w(f"| growth of httpd parent + children + spawner, all sessions | {m['httpd_delta_kib']} KiB |")
        w(f"| busy httpd worker threads (mod_status BusyWorkers, minus the status request) | "
          f"**{m['busy_workers']}** |")
        w(f"| httpd child threads running or in D state at that moment | {m['running_worker_threads']} |")
        w("")
    else:
        w(f"mod_websession: {failure(ws) or 'failed'}")
        w("")
    if wsd and wsd["exit"] == 0:
        r = wsd["result"]
        n = r["open"]["opened"] or 1
        beyond = r["after"]["server_kb"] - r["before"]["server_kb"]
        mem["websocketd"] = {
            "sessions": n,
            "per_session_kib_beyond_script": beyond / n,
            "per_session_kib_including_script": (beyond + r["after"]["scripts_kb"]) / n,
            "script_kib": r["after"]["scripts_kb"] / max(r["after"]["scripts"], 1),
            "before": r["before"], "after": r["after"],
        }
        m = mem["websocketd"]
        w(f"For comparison, websocketd with {n} idle sessions: "
          f"{m['per_session_kib_beyond_script']:.0f} KiB per session beyond the script "
          f"(growth of the websocketd process), {m['per_session_kib_including_script']:.0f} KiB "
          "including it. mod_proxy and mod_lua hold a worker thread per open connection, so "
          "they were not given 1,000 idle sessions.")
        if "websession" in mem:
            mem["websocketd"]["ratio_beyond"] = ratio(m["per_session_kib_beyond_script"],
                                                      mem["websession"]["per_session_kib_beyond_script"])
            mem["websocketd"]["ratio_including"] = ratio(m["per_session_kib_including_script"],
                                                         mem["websession"]["per_session_kib_including_script"])
            w(f"Ratios websocketd / mod_websession: {fmt_ratio(mem['websocketd']['ratio_beyond'])} "
              f"beyond the script, {fmt_ratio(mem['websocketd']['ratio_including'])} including it.")
        w("")
    res["idle"] = mem

    # ---- resume latency ----------------------------------------------------
    w("## Resume latency (websession.v1; no peer resumes)")
    w("")
    rs = runs.get((BASE, "resume"))
    if rs and rs.get("exit") == 0 and rs.get("result"):
        r = rs["result"]
        res["resume"] = r
        w("From a new TCP connection to the first replayed message: connect, upgrade with the "
          "session id, both `R`s, and the reply the old connection never delivered. The client "
          "is bench/resume_latency.py (Python, websockets), so its own overhead is included: "
          "an upper bound.")
        w("")
        w("| rounds | p50 ms | p90 ms | p99 ms | max ms |")
        w("| ---: | ---: | ---: | ---: | ---: |")
        w(f"| {r['rounds']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | "
          f"{r['max_ms']:.2f} |")
    else:
        res["resume"] = None
        w(f"Not measured: {failure(rs) or 'failed'}.")
    w("")

    # ---- most idle sessions ------------------------------------------------
    w("## Most concurrent idle sessions (mod_websession, bench/echo)")
    w("")
    mx = runs.get((BASE, "maxidle"))
    if mx and mx.get("result") and mx["result"].get("open"):
        r = mx["result"]
        o = r["open"]
        res["maxidle"] = {"requested": r["requested"], "opened": o["opened"],
                          "failed": o["failed"], "open_seconds": o["open_seconds"],
                          "keepers": r.get("keepers"), "scripts": r.get("scripts"),
                          "busy_workers": r.get("busy_workers"),
                          "http_status": o.get("http_status"),
                          "first_error": o.get("first_error")}
        w("| requested | opened | failed | seconds to open | keepers | scripts | busy workers |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        w(f"| {r['requested']:,} | {o['opened']:,} | {o['failed']} | {o['open_seconds']:.1f} | "
          f"{r.get('keepers', 'n/a')} | {r.get('scripts', 'n/a')} | {r.get('busy_workers', 'n/a')} |")
        if o.get("first_error"):
            w("")
            w(f"First error: `{o['first_error']}`; HTTP statuses: {o.get('http_status')}.")
        w("")
        w("Opened 64 at a time (`WebSessionMaxSessions 12000`, `ulimit -n 65536`); wsload stops "
          "opening at the first failure and reports the number reached.")
    else:
        w(f"Not measured: {failure(mx) or 'failed'}.")
    w("")

    # ---- targets -------------------------------------------------------------
    def get(work, peer, key):
        t = res["workloads"].get(work, {}).get(peer) or {}
        return t.get(key)

    targets = []

    def target(name, value, goal, met):
        targets.append({"target": name, "measured": value, "goal": goal,
                        "met": met})

    ws50, wsd50, lua50 = get("rtt64", BASE, "p50_us"), get("rtt64", "websocketd", "p50_us"), \
        get("rtt64", "lua", "p50_us")
    if ws50 and wsd50:
        target("64-byte RTT p50 no slower than websocketd",
               f"{ws50:.1f} us vs {wsd50:.1f} us", "<= 1.00x", ws50 <= wsd50)
    if ws50 and lua50:
        target("64-byte RTT p50 within 1.5x of mod_lua",
               f"{ws50:.1f} us vs {lua50:.1f} us ({ws50 / lua50:.2f}x)", "<= 1.50x",
               ws50 <= 1.5 * lua50)
    t_ws, t_px, t_wd = get("tp64", BASE, "msgs_per_s"), get("tp64", "proxy", "msgs_per_s"), \
        get("tp64", "websocketd", "msgs_per_s")
    if t_ws and t_px:
        target("throughput at 64 connections >= 1.5x mod_proxy -> websocketd",
               f"{t_ws:,.0f} vs {t_px:,.0f} msgs/s ({t_ws / t_px:.2f}x)", ">= 1.50x",
               t_ws >= 1.5 * t_px)
    if t_ws and t_wd:
        target("throughput at 64 connections above websocketd",
               f"{t_ws:,.0f} vs {t_wd:,.0f} msgs/s ({t_ws / t_wd:.2f}x)", "> 1.00x", t_ws > t_wd)
    c_ws, c_wd = get("connect", BASE, "sessions_per_s"), get("connect", "websocketd", "sessions_per_s")
    if c_ws and c_wd:
        target("new sessions/s >= websocketd",
               f"{c_ws:,.0f} vs {c_wd:,.0f} /s ({c_ws / c_wd:.2f}x)", ">= 1.00x", c_ws >= c_wd)
    if res.get("resume"):
        p50 = res["resume"]["p50_ms"]
        target("resume latency p50 under 2 ms on loopback", f"{p50:.2f} ms", "< 2 ms", p50 < 2)
    if "websession" in mem:
        m = mem["websession"]
        target("memory per idle session <= 256 KiB PSS beyond the script",
               f"{m['per_session_kib_beyond_script']:.0f} KiB", "<= 256 KiB",
               m["per_session_kib_beyond_script"] <= 256)
        target("zero worker threads held by idle sessions (plain TCP)",
               f"{m['busy_workers']}", "0", m["busy_workers"] == 0)
    if res["maxidle"]:
        target("10,000 idle sessions", f"{res['maxidle']['opened']:,}", ">= 10,000",
               res["maxidle"]["opened"] >= 10000)
    res["targets"] = targets
    w("## The issue's targets, as measured in this run")
    w("")
    w("Reported, not enforced (bench/run does not fail on them).")
    w("")
    w("| target | measured | goal | met |")
    w("| --- | --- | --- | --- |")
    for t in targets:
        w(f"| {t['target']} | {t['measured']} | {t['goal']} | {'yes' if t['met'] else '**no**'} |")
    w("")

    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    with open(json_path, "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
