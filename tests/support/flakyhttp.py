"""A file served over HTTP with Range requests, as Cloud Storage serves a signed URL, that can
fail the way a network and a server do: answer with an error status for a while, or cut a
response short and close the connection."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Faults:
    """What the server does wrong. ``status`` answers the next ``failures`` requests (every
    request when ``failures`` is None); ``cut_after`` sends only that many bytes of the next
    ``cuts`` bodies, then closes the connection."""

    status: int = 503
    failures: int | None = 0
    cut_after: int | None = None
    cuts: int = 1
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_failure(self) -> bool:
        with self.lock:
            self.requests += 1
            if self.failures is None:
                return True
            if self.failures > 0:
                self.failures -= 1
                return True
            return False

    def take_cut(self) -> int | None:
        with self.lock:
            if self.cut_after is None or self.cuts <= 0:
                return None
            self.cuts -= 1
            return self.cut_after


@dataclass(frozen=True)
class FlakyServer:
    url: str
    faults: Faults


@contextmanager
def serve(path: Path, faults: Faults) -> Iterator[FlakyServer]:
    data = path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if faults.take_failure():
                self.send_response(faults.status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                return
            start, end = 0, len(data) - 1
            if found := _RANGE.match(self.headers.get("Range") or ""):
                start = int(found[1])
                end = int(found[2]) if found[2] else end
            body = data[start : end + 1]
            self.send_response(206 if found else 200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if found:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if (cut := faults.take_cut()) is not None and cut < len(body):
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True  # the rest never comes
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: no access log in the tests' output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FlakyServer(f"http://127.0.0.1:{server.server_port}/{path.name}", faults)
    finally:
        server.shutdown()
        server.server_close()
