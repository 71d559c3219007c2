#!/usr/bin/python3
"""What a hostile local process can do to mod_websession's Unix sockets, for
t/17_hostile_peers.t.  Each action may first drop to another user (--uid,
--gid): the abstract names are listed in /proc/net/unix for every user.

  hostile_peers.py hold  --socket NAME --count N       [--uid U --gid G]
      Opens N connections to "\\0NAME" and sends nothing.  Prints
      "READY <json>" once they are open ({"opened", "failed"}), holds them
      until its stdin closes, then prints {"opened", "failed",
      "closed_by_server"}: how many of them the server had closed by then.

  hostile_peers.py flood --socket NAME --count N       [--uid U --gid G]
      Connects and closes at once, N times, one after another (each connect
      waits at most 2 s).  Prints {"connected", "failed", "seconds"}.

  hostile_peers.py squat --httpd PID --slots S --gens A-B [--keyed] [--uid ...]
      Binds the names keepers of httpd PID would listen on for slots 0..S-1
      and generations A..B, and holds them until its stdin closes: without
      --keyed the names anyone can work out, that is the old predictable
      scheme "mod_websession/PID/k<slot>.<gen>", for every keeper name with
      a MAC it sees in /proc/net/unix the same name for the next generations
      with that MAC, and the names with the MAC of an all-zero key; with --keyed (root only) the real names,
      made with the name key read out of the memory of httpd's parent
      (ipc.c: HMAC-SHA1 under a key only httpd's processes hold).  Prints
      "READY <json>" ({"bound", "in_use", "failed", "key_found"}), and
      {"bound"} at the end.

Exit status 0 unless an error ends it early ({"error": ...}).  Standard
library only.
"""

import argparse
import errno
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time


def become(uid, gid):
    if uid is None:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)


def unix_names():
    """Every abstract name in /proc/net/unix, without the "@"."""
    names = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("@"):
                names.add(parts[7][1:])
    return names


def connect_one(name, timeout):
    """A blocking connect, as httpd's processes make them: it waits while the
    listener's backlog is full, for at most timeout seconds (SO_SNDTIMEO)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                 struct.pack("ll", int(timeout), int((timeout % 1) * 1e6)))
    try:
        s.connect("\0" + name)
    except OSError:
        s.close()
        raise
    return s


def hold(args):
    held, failed = [], {}
    for _ in range(args.count):
        try:
            held.append(connect_one(args.socket, 2.0))
        except OSError as e:
            key = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
            failed[key] = failed.get(key, 0) + 1
    print("READY " + json.dumps({"opened": len(held), "failed": failed}), flush=True)
    sys.stdin.read()
    closed = 0
    for s in held:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1                 # reset by the server
        s.close()
    return {"opened": len(held), "failed": failed, "closed_by_server": closed}


def flood(args):
    connected, failed = 0, 0
    t0 = time.monotonic()
    for _ in range(args.count):
        try:
            connect_one(args.socket, 2.0).close()
            connected += 1
        except OSError:
            failed += 1
    return {"connected": connected, "failed": failed,
            "seconds": round(time.monotonic() - t0, 3)}


def keyed_name(key, visible):
    return visible + "." + hmac.new(key, visible.encode(), hashlib.sha1).hexdigest()[:32]


def read_name_key(httpd):
    """The name key of httpd's parent: found through the module's static
    pointer to its shared state (`shared`), then recognised by the MAC it
    gives the spawner's name."""
    prefix = "mod_websession/%d/spawner." % httpd
    spawner = [n for n in unix_names() if n.startswith(prefix)]
    if not spawner:
        raise RuntimeError("no spawner socket with a MAC for httpd %d" % httpd)
    visible, mac = spawner[0].rsplit(".", 1)
    so = base = None
    with open("/proc/%d/maps" % httpd) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].endswith("/mod_websession.so") \
                    and int(parts[2], 16) == 0:
                so, base = parts[5], int(parts[0].split("-")[0], 16)
                break
    if so is None:
        raise RuntimeError("mod_websession.so is not mapped in %d" % httpd)
    nm = subprocess.run(["nm", so], stdout=subprocess.PIPE, check=True).stdout.decode()
    offsets = [int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) [bBdD] shared$", nm, re.M)]
    with open("/proc/%d/mem" % httpd, "rb", buffering=0) as mem:
        for off in offsets:
            mem.seek(base + off)
            (ptr,) = struct.unpack("<Q", mem.read(8))
            if not ptr:
                continue
            mem.seek(ptr)
            blob = mem.read(512)
            for i in range(len(blob) - 16):
                key = blob[i:i + 16]
                if keyed_name(key, visible) == spawner[0]:
                    return key
    raise RuntimeError("no name key found in the memory of %d" % httpd)


def squat(args):
    lo, hi = (int(x) for x in args.gens.split("-"))
    prefix = "mod_websession/%d" % args.httpd
    names, key = [], None
    if args.keyed:
        key = read_name_key(args.httpd)
        for slot in range(args.slots):
            for gen in range(lo, hi + 1):
                names.append(keyed_name(key, "%s/k%d.%d" % (prefix, slot, gen)))
    else:
        for slot in range(args.slots):
            for gen in range(lo, hi + 1):
                names.append("%s/k%d.%d" % (prefix, slot, gen))
        seen = [n for n in unix_names() if n.startswith(prefix + "/")]
        for n in seen:
            m = re.match(r"^(.*)/k(\d+)\.(\d+)\.([0-9a-f]{32})$", n)
            if m:
                for gen in range(int(m.group(3)) + 1, int(m.group(3)) + 4):
                    names.append("%s/k%s.%d.%s" % (m.group(1), m.group(2), gen, m.group(4)))
        for n in seen:
            m = re.match(r"^.*/spawner\.([0-9a-f]{32})$", n)
            if m:
                for slot in range(args.slots):
                    for gen in range(lo, hi + 1):
                        names.append("%s/k%d.%d.%s" % (prefix, slot, gen, m.group(1)))
        # ... and the MACs of a key that is all zeros (as a key never drawn is)
        for slot in range(args.slots):
            for gen in range(lo, hi + 1):
                names.append(keyed_name(bytes(16), "%s/k%d.%d" % (prefix, slot, gen)))
    become(args.uid, args.gid)
    held, in_use, failed = [], 0, 0
    for n in names:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind("\0" + n)
            s.listen(1)
            held.append(s)
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE:
                in_use += 1
            else:
                failed += 1
    print("READY " + json.dumps({"bound": len(held), "in_use": in_use, "failed": failed,
                                 "key_found": key is not None}), flush=True)
    sys.stdin.read()
    for s in held:
        s.close()
    return {"bound": len(held)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["hold", "flood", "squat"])
    ap.add_argument("--socket")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--httpd", type=int)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--gens", default="1-1")
    ap.add_argument("--keyed", action="store_true")
    ap.add_argument("--uid", type=int)
    ap.add_argument("--gid", type=int)
    args = ap.parse_args()
    try:
        if args.action == "squat":
            out = squat(args)       # reads httpd's memory before it drops to --uid
        else:
            become(args.uid, args.gid)
            out = hold(args) if args.action == "hold" else flood(args)
    except Exception as e:          # report it on the JSON line
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
