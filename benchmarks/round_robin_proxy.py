"""A TCP proxy handing each new connection to the next of several local backends in turn: the load
balancer in front of the web processes of benchmarks/scaling_curve.py. A process of its own, so that
its CPU is neither the fakes' nor the app's. Prints the port it listens on, then serves until killed.

    python benchmarks/round_robin_proxy.py BACKEND_PORT [BACKEND_PORT ...]
"""

from __future__ import annotations

import asyncio
import itertools
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(backends: list[int]) -> None:
    turn = itertools.cycle(backends)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", next(turn))
        except (
            OSError
        ):  # that web process is gone: the client sees the connection closed, as behind a balancer
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, backend_writer), pipe(backend_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)  # the port is ours from bind to listen
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve([int(port) for port in sys.argv[1:]]))
