"""HTTP servers under test as subprocesses on free ports: geogrid serve, or any uvicorn app."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``argv`` (given ``--port``) serving HTTP on a free port until ``ready`` answers; stopped on exit."""

    def __init__(self, argv: list[str], env: dict, ready: str, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([*argv, "--port", str(self.port)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + ready, timeout=5).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.proc.kill()
        raise SystemExit(f"{name} did not start")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def geogrid_server(url: str, keys: str, workers: int = 1, **env: str) -> Server:
    """``geogrid serve`` on database ``url`` with ``GEOGRID_API_KEYS=keys`` (and more settings in ``env``)."""
    env = dict(os.environ, GEOGRID_DATABASE_URL=url, GEOGRID_API_KEYS=keys, GEOGRID_ENVIRONMENT="development",
               **env)
    return Server([sys.executable, "-m", "geogrid.cli", "serve", "--workers", str(workers)], env, "/health",
                  "geogrid serve")
