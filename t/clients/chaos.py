#!/usr/bin/python3
"""Chaos test for websession.v1: a TCP proxy between the client and httpd
drops connections at random (mid-frame, mid-handshake, while idle, during
replay) and stalls some.  The client sends numbered messages to an
echo-and-count script that also pushes its own numbered stream; at the end
both streams must have arrived exactly once and in order.

    chaos.py --port HTTPD_PORT [--messages 10000] [--min-drops 100]
             [--transport websocket|sse|poll]
Prints one JSON line; exits 0 when every check passed.

With --transport sse or poll the same proxy cuts the HTTP fallback's
requests: inside a request or response head ("handshake"), inside a POST's
body or its answer, inside an event stream or a poll's answer ("traffic"),
and streams and polls that are waiting ("idle").
"""
import argparse
import asyncio
import json
import os
import random
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tools"))
from websession_client import Session  # noqa: E402

from chaos_echo import Streams  # noqa: E402


class Proxy:
    def __init__(self, target_port, rng):
        self.target_port = target_port
        self.rng = rng
        self.drops = {"handshake": 0, "traffic": 0, "idle": 0}
        self.stalls = 0
        self.connections = 0
        self.active = True

    async def handle(self, creader, cwriter):
        self.connections += 1
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            cwriter.transport.abort()
            return
        r = self.rng.random()
        if r < 0.1:
            budget, kind = self.rng.randint(1, 300), "handshake"       # inside the upgrade
        else:
            budget, kind = self.rng.randint(300, 3000), "traffic"      # mid-frame, replay
        lifetime = self.rng.uniform(0.05, 0.8)                          # idle drops
        state = {"left": budget, "done": False}

        def kill(why):
            if not state["done"]:
                state["done"] = True
                self.drops[why] += 1
                cwriter.transport.abort()
                swriter.transport.abort()

        async def pump(reader, writer):
            try:
                while not state["done"]:
                    data = await reader.read(4096)
                    if not data:
                        break
                    if self.active and self.rng.random() < 0.003:
                        self.stalls += 1
                        await asyncio.sleep(self.rng.uniform(0.05, 0.4))
                    if self.active and len(data) >= state["left"]:
                        cut = state["left"]
                        writer.write(data[:cut])
                        kill(kind)
                        return
                    state["left"] -= len(data) if self.active else 0
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not state["done"]:
                    state["done"] = True
                    cwriter.transport.abort()
                    swriter.transport.abort()

        async def timer():
            await asyncio.sleep(lifetime)
            if self.active:
                kill("idle")

        t = asyncio.ensure_future(timer())
        await asyncio.gather(pump(creader, swriter), pump(sreader, cwriter))
        t.cancel()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="httpd's port")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--min-drops", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--path", default="/ws/chaos-echo")
    ap.add_argument("--timeout", type=float, default=110)
    ap.add_argument("--transport", choices=("websocket", "sse", "poll"), default="websocket")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    proxy = Proxy(a.port, rng)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    pport = server.sockets[0].getsockname()[1]
    n = a.messages
    s = Session("http://127.0.0.1:%d%s?n=%d" % (pport, a.path, n), max_backoff=0.2,
                transport=a.transport, idle_timeout=10)
    t0 = time.monotonic()
    await s.start()
    got, errors = Streams(n), []

    async def writer():
        for i in range(1, n + 1):
            await s.send("c%d" % i)
            if i % 50 == 0:
                await asyncio.sleep(0.01)    # let drops land at every stage

    ok = True
    try:
        await asyncio.wait_for(asyncio.gather(got.read(s), writer()), a.timeout)
    except Exception as e:
        errors.append(repr(e))
        ok = False
    proxy.active = False
    secs = time.monotonic() - t0
    await s.close()
    server.close()
    drops = sum(proxy.drops.values())
    errors = got.other + errors
    result = {
        "seed": seed, "transport": a.transport, "seconds": round(secs, 1),
        "sent": n, "echoes": len(got.echoes), "stream": len(got.stream),
        "echoes_exact": got.exact(got.echoes),
        "stream_exact": got.exact(got.stream),
        "drops": drops, "drops_by_kind": proxy.drops, "stalls": proxy.stalls,
        "connections": proxy.connections, "reconnects": s.reconnects,
        "errors": errors[:5],
    }
    ok = ok and result["echoes_exact"] and result["stream_exact"] and not errors \
        and drops >= a.min_drops
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
