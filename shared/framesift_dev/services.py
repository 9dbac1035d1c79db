"""The dev stack's services as processes: each in its own process group on a free loopback
port, started and waited for until it answers, and killed whole."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class DevStackError(RuntimeError):
    pass


@dataclass
class ServiceState:
    name: str
    pid: int
    port: int
    log: str
    # How it was started, so ``restart`` can start it again on the same port.
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # answers below 500 once it is ready; None: its port is open


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, urllib.error.URLError):
        return False


def tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def launch(service: ServiceState, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``service``'s process, its log appended to."""
    log_path = Path(service.log)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            service.command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **service.env},
            cwd=cwd,
            start_new_session=True,  # its own process group: 'down' kills it whole
        )


def wait_until_ready(
    process: subprocess.Popen[bytes], service: ServiceState, timeout: float
) -> None:
    """Wait until ``service`` answers; raise with its log's last lines if it exits first or is
    not ready in ``timeout`` seconds."""
    log_path = Path(service.log)
    name, port, url = service.name, service.port, service.ready_url

    def ready() -> bool:
        return http_ok(url) if url else tcp_open(port)

    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise DevStackError(
                f"{name} exited with {process.returncode}; last log lines:\n{tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise DevStackError(f"{name} not ready after {timeout:.0f}s:\n{tail(log_path)}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds (at once, as a crash, if 0)."""
    try:
        os.killpg(pgid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
        if not alive(pgid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, 0)
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def environ(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` set in this process's environment for the block, then restored."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
