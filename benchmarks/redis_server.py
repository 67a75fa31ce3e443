"""A private ``redis-server`` on a free loopback port, for the Redis section only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ("RedisServer",)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as url:``; ``url`` is None when ``redis-server`` is not on PATH."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> str | None:
        if self.binary is None:
            return None
        port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="limitor-bench-redis-")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _ping(port):
                self.url = f"redis://127.0.0.1:{port}/0"
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> str | None:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
