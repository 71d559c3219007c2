#!/usr/bin/python3
"""Offer mod_websession's spawner a log descriptor (IPC_LOGFD) the way
httpd's parent does after a restart, but as any local user: for
t/15_local_peers.t, which checks that only root is listened to.

  local_peers.py --socket NAME --file PATH [--uid U --gid G] [--timeout S]

Drops to uid/gid (if given) first, then opens PATH for appending as that
user, connects to the abstract Unix socket "\\0NAME", sends the 12-byte
header (magic, IPC_LOGFD, length 0) with the descriptor attached
(SCM_RIGHTS), and waits for the spawner's answer.  Prints one line of JSON:
  {"uid": .., "gid": .., "sent": bytes, "reply": "eof" | "timeout" | "N bytes"}
or {"error": "..."}; exit status 0 when the message was sent.
Standard library only (socket.send_fds, Python 3.9+).
"""

import argparse
import json
import os
import socket
import struct
import sys

IPC_MAGIC = 0x57535331        # "WSS1", ipc.h
IPC_LOGFD = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True, help="abstract name, without the NUL")
    ap.add_argument("--file", required=True)
    ap.add_argument("--uid", type=int)
    ap.add_argument("--gid", type=int)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    out = {}
    try:
        if args.uid is not None:
            os.setgroups([])
            os.setgid(args.gid if args.gid is not None else args.uid)
            os.setuid(args.uid)
        out["uid"], out["gid"] = os.getuid(), os.getgid()
        fd = os.open(args.file, os.O_WRONLY | os.O_APPEND)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        s.connect("\0" + args.socket)
        header = struct.pack("<III", IPC_MAGIC, IPC_LOGFD, 0)
        out["sent"] = socket.send_fds(s, [header], [fd])
        os.close(fd)
        try:
            data = s.recv(64)
            out["reply"] = "eof" if not data else "%d bytes" % len(data)
        except socket.timeout:
            out["reply"] = "timeout"
        except ConnectionResetError:
            out["reply"] = "eof"        # closed with our message unread
        s.close()
    except Exception as e:              # report it on the JSON line
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))
    return 0 if "sent" in out else 1


if __name__ == "__main__":
    sys.exit(main())
