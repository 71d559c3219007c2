#!/usr/bin/python3
"""Resume latency of websession.v1 on loopback: from the new TCP connection
to the first replayed message.  Each round sends a message, lets the
script's reply reach the client's socket unread, drops the connection, and
times connect + upgrade + R exchange + the replayed reply.  The client is
Python (websockets), so the figures include its own overhead.

    bench/resume_latency.py URL [ROUNDS]      -> one JSON line

URL is a websession.v1 echo (ws://127.0.0.1:PORT/echo in bench/run's
server, ws://127.0.0.1:PORT/ws/count in the test server); bench/run runs
it as the "resume" workload.
"""
import asyncio
import json
import sys
import time

import websockets

async def main(url, rounds):
    ws = await websockets.connect(url, subprotocols=["websession.v1"], ping_interval=None)
    sid = ws.response_headers["Session-ID"]
    rx = 0
    await ws.send("R0")
    lat = []
    while True:                                   # I and R first
        m = await ws.recv()
        if m.startswith("R"):
            break
    for i in range(rounds):
        await ws.send("Dm%d" % i)
        await asyncio.sleep(0.005)                # the reply is in our socket, unread
        ws.transport.abort()
        t0 = time.perf_counter()
        ws = await websockets.connect(url, subprotocols=["websession.v1", "websession.id." + sid],
                                      ping_interval=None)
        await ws.send("R%d" % rx)
        while True:
            m = await ws.recv()
            if m.startswith("D"):
                lat.append(time.perf_counter() - t0)
                rx += 1
                break
    await ws.close()
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3)
    print(json.dumps({"rounds": rounds, "p50_ms": pick(0.5), "p90_ms": pick(0.9),
                      "p99_ms": pick(0.99), "max_ms": round(lat[-1] * 1000, 3)}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 500))
