"""Records every Google API call a function makes, for the permission-coverage check.

The dev stack starts a function under this module instead of functions-framework when asked to
record (``DevStack(record_api_calls=True)``)::

    python -m framesift_dev.apicalls CALLS.jsonl -- --target sample_video --source main.py ...

It installs hooks, then runs functions-framework with the arguments after ``--``. Each call is
one JSON line in ``CALLS.jsonl``:

- ``{"api": "http", "method", "path", "query"}``: every request through ``requests`` (the
  Cloud Storage and BigQuery clients, and the vendors' SDKs, whose calls the check ignores),
  with the ``object`` an upload to Cloud Storage writes (named in its body, not its path);
- ``{"api": "grpc", "method", "resource"}``: every gRPC call (Pub/Sub, Firestore) with the
  topic or database the request names;
- ``{"api": "sign", "bucket", "object"}``: every URL the blob store hands out for reading
  (deployed, a V4 URL signed through IAM signBlob, which reads with the signer's rights: the
  emulators take the object's media link instead, so the call itself is not seen there).

Nothing here ships with a function: the hooks patch the clients from outside.
"""

from __future__ import annotations

import json
import runpy
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_lock = threading.Lock()


class CallLog:
    def __init__(self, path: Path) -> None:
        self._path = path

    def write(self, call: dict[str, Any]) -> None:
        line = json.dumps(call, sort_keys=True) + "\n"
        with _lock, self._path.open("a") as out:
            out.write(line)


def install(log: CallLog) -> None:
    """Patch requests, gRPC and the blob store's URL signing to report to ``log``."""
    _hook_requests(log)
    _hook_grpc(log)
    _hook_signing(log)


def _hook_requests(log: CallLog) -> None:
    import requests

    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        query = kwargs.get("params") or {}
        call = {
            "api": "http",
            "method": method.upper(),
            "path": parts.path,
            "query": parts.query + "".join(f"&{k}={v}" for k, v in dict(query).items()),
        }
        if parts.path.startswith("/upload/storage/"):
            call["object"] = uploaded_object(call["query"], kwargs.get("data"))
        log.write(call)
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = request  # type: ignore[method-assign,assignment]


def uploaded_object(query: str, body: Any) -> str:
    """The object an upload to Cloud Storage writes: named in its query (``uploadType=media``)
    or in the JSON metadata its body starts with (multipart, and a resumable upload's first
    request), as the storage client sends them; "" if neither names it."""
    named = parse_qs(query).get("name")
    if named:
        return named[0]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    start = text.find("{")
    if start < 0:
        return ""
    try:
        metadata, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        return ""
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def _grpc_resource(request: Any) -> str:
    for field in ("topic", "database", "parent", "name"):
        value = getattr(request, field, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _hook_grpc(log: CallLog) -> None:
    from grpc import _channel

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            method = self._method
            log.write(
                {
                    "api": "grpc",
                    "method": method.decode() if isinstance(method, bytes) else str(method),
                    "resource": _grpc_resource(request),
                }
            )
            return original(self, request, *args, **kwargs)

        return call

    for name in (
        "_UnaryUnaryMultiCallable",
        "_UnaryStreamMultiCallable",
        "_SingleThreadedUnaryStreamMultiCallable",
    ):
        kind = getattr(_channel, name, None)
        for attribute in ("__call__", "with_call", "future"):
            if kind is not None and hasattr(kind, attribute):
                setattr(kind, attribute, wrap(getattr(kind, attribute)))


def _hook_signing(log: CallLog) -> None:
    from framesift.adapters.gcp import gcs

    original = gcs.GcsBlobStore.stream_url

    def stream_url(self: gcs.GcsBlobStore, bucket: str, name: str, *args: Any, **kw: Any) -> str:
        log.write({"api": "sign", "bucket": bucket, "object": name})
        return original(self, bucket, name, *args, **kw)

    gcs.GcsBlobStore.stream_url = stream_url  # type: ignore[method-assign,assignment]


def read(path: Path) -> list[dict[str, Any]]:
    """The calls recorded in ``path`` (none if the function made none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    log_path, separator, *framework_args = sys.argv[1:]
    if separator != "--":
        raise SystemExit("usage: python -m framesift_dev.apicalls CALLS.jsonl -- FF_ARGS...")
    install(CallLog(Path(log_path)))
    sys.argv = ["functions_framework", *framework_args]
    runpy.run_module("functions_framework", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
