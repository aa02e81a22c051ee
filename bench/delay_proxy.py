"""A TCP proxy on loopback that delays every byte by a fixed time in each direction: a remote API server, simulated.

    python bench/delay_proxy.py --target 127.0.0.1:6443 --delay-ms 10    # prints the port it listens on

Used by `bench_replay.py workers` to compare in-flight settings against a target with a real round trip (TLS
passes through untouched; the delay is added per chunk, in order, without limiting bandwidth). Runs as its own
process so that its CPU does not share the benchmarked replayer's GIL.
"""

from __future__ import annotations

import argparse
import asyncio


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            chunks.put_nowait((loop.time() + delay, data))
            if not data:
                break
    except ConnectionError:
        chunks.put_nowait((0.0, b""))
    await sender


async def main(target: str, delay_ms: float, port: int) -> None:
    host, _, target_port = target.rpartition(":")

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(target_port))
        except OSError:
            client_w.close()
            return
        delay = delay_ms / 1000
        await asyncio.gather(pipe(client_r, server_w, delay), pipe(server_r, client_w, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="host:port to forward to")
    ap.add_argument("--delay-ms", type=float, required=True, help="added in each direction")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    asyncio.run(main(args.target, args.delay_ms, args.port))
