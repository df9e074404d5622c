"""A real `mlflow models serve` on 127.0.0.1, started and stopped: for the serving benchmark and the tests.

    with scoring_server.running("models:/mnist/Production", workers=2) as server:
        server.url        # http://127.0.0.1:<a free port>
        server.memory()   # resident bytes of the server and its workers

The server runs in the environment it is started from (`--env-manager local`),
in a session of its own, so stopping it stops its workers too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

HOST = "127.0.0.1"
START_TIMEOUT = 180  # seconds for the server to load the model and answer /ping


class ServerError(RuntimeError):
    """The server stopped or did not answer in time; the message ends with what it printed."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen

    def memory(self) -> int:
        """Resident memory in bytes of the server process and every process under it (uvicorn's workers)."""
        return sum(resident_bytes(pid) for pid in [self.process.pid, *descendants(self.process.pid)])


@contextmanager
def running(model: str, workers: int = 1, environment: dict | None = None) -> Iterator[Server]:
    """`mlflow models serve -m model` on a free port of 127.0.0.1, once it answers /ping; stopped on leaving."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "models", "serve", "-m", model, "--env-manager", "local"]
    command += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    bin_first = {"PATH": f"{mlflow.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a pipe nobody reads stops a busy server
        process = subprocess.Popen(
            command,
            env={**os.environ, **bin_first, **(environment or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(f"http://{HOST}:{port}", process)
        try:
            wait_for(f"{server.url}/ping", process, lambda: read_from_start(log), "mlflow models serve", START_TIMEOUT)
            yield server
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(url: str, process: subprocess.Popen, output: Callable[[], str], name: str, timeout: float) -> None:
    """Return once `url` answers 200; raise ServerError, with the end of `output()`, if `process` stops first,
    or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{name} stopped: {output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServerError(f"{name} did not answer {urlsplit(url).path} in {timeout} s")


def read_from_start(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, parent, ...
        except OSError:  # gone
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, waiting = [], [pid]
    while waiting:
        below = children.get(waiting.pop(), [])
        found += below
        waiting += below
    return found


def resident_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return 0
    kilobytes = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
    return int(kilobytes) * 1024
