"""One limit shared by several processes through Redis: ``backend=`` and ``name=``.

Four worker processes (as gunicorn or Celery would start them) call the same decorated
function. Its limit, 10 calls per second with bursts of 10, lives in Redis under the
name ``"example:search"``, so it holds for all of them together: each process waits its
turn on the server's clock, and in no second do the four together make more than
10 + 10 calls (the burst plus one second of rate). Every process gets a share.

Run it with a Redis server::

    REDIS_URL=redis://localhost:6379/0 python examples/redis_across_processes.py

Without ``REDIS_URL`` it starts a private ``redis-server`` when one is installed
(``apt-get install redis-server``), and says so when there is none. It takes about
three seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import time

from limitor import rate_limit
from limitor.backends.redis import RedisBackend

PROCESSES = 4
SECONDS = 2.0


def worker(url: str, start_at: float) -> list[float]:
    """In a child process: call ``search`` until SECONDS have passed; return call times."""
    backend = RedisBackend.from_url(url)

    @rate_limit(capacity=10, seconds=1, backend=backend, name="example:search")
    def search(query: str) -> str:
        return f"results for {query}"

    time.sleep(max(start_at - time.time(), 0.0))
    calls = []
    while time.time() < start_at + SECONDS:
        search("limitor")  # waits for its turn, shared with the other processes
        calls.append(time.time())
    backend.close()
    return calls


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    low = best = 0
    for high, now in enumerate(times):
        while times[low] < now - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def private_server() -> tuple[str, subprocess.Popen[bytes]] | None:
    """A throwaway redis-server on a free port, or None when none is installed."""
    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.02)
    return f"redis://127.0.0.1:{port}/0", server


def main() -> None:
    url = os.environ.get("REDIS_URL")
    server = None
    if url is None:
        started = private_server()
        if started is None:
            print("no Redis server: set REDIS_URL or install redis-server")
            return
        url, server = started
        print("started a private redis-server for this example")
    try:
        start_at = time.time() + 1.0
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            runs = pool.starmap(worker, [(url, start_at)] * PROCESSES)
        for index, calls in enumerate(runs):
            print(f"process {index}: {len(calls)} calls")
        every = [t for calls in runs for t in calls]
        print(f"{len(every)} calls in {SECONDS:g} s from {PROCESSES} processes")
        print(f"never more than {most_in_one_second(every)} in any 1 s (the limit allows 20)")
    finally:
        if server is not None:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
