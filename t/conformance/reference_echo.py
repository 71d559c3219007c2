#!/usr/bin/python3
"""reference_echo.py -- an independent echo server to validate wsconform.py.

    /usr/bin/python3 t/conformance/reference_echo.py PORT [MAX_MESSAGE]

Uses python3-websockets (10.x, Debian's package, visible to /usr/bin/python3):
every text message is echoed as text, every binary message as binary.  No
compression (the suite offers no extension), no keepalive pings, and a
message limit of MAX_MESSAGE bytes (default 16 MiB) -- pass the same value
to wsconform.py --max-message to run the 1009 cases.  Listens on 127.0.0.1.
"""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main(port, max_size):
    async with websockets.serve(echo, '127.0.0.1', port, max_size=max_size,
                                compression=None, ping_interval=None,
                                close_timeout=2, max_queue=64):
        print('reference echo server on ws://127.0.0.1:%d/ (max_size %d)' % (port, max_size),
              flush=True)
        await asyncio.Future()


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit('usage: reference_echo.py PORT [MAX_MESSAGE]')
    port = int(sys.argv[1])
    max_size = int(sys.argv[2]) if len(sys.argv) > 2 else 16 * 2**20
    asyncio.run(main(port, max_size))
