"""The vendor-callback HTTP endpoint: authenticate, validate, normalise, store, answer.

Routes (give each vendor its own): ``POST {webhook_url}/{vendor}`` for each vendor that calls
back (``/scale``, ``/labelstudio``), authenticated by the header the vendor registry names
(:mod:`framesift.vendors.registry`). Answers:

- 200 only after the annotation is durably stored (or was already, or is older than the one
  stored), so a vendor that retries (Scale, for 24 h) never loses a callback;
- 401 for a missing or wrong secret (compared in constant time; the secret is never logged),
  404 for an unknown route, 405 for a method other than POST, 413 over the size limit,
  400 for a body that is not JSON, 422 for one that is not the vendor's shape, names no frame,
  a frame this deployment never sent to the vendor or another task than the one it created, or
  holds values that cannot be labels (:mod:`framesift.annotations`): nothing is stored for any
  of them, and the reason is in the answer and the log;
- 413 or 422 for a callback the document store refuses however often it is sent (an annotation
  too large even in parts, :mod:`framesift.parts`; a value Firestore cannot hold): it is kept
  in ``rejected_callbacks`` with its body and reason (:mod:`framesift.rejected_callbacks`) for
  an operator to replay with ``framesift replay-callbacks``;
- 409 for a frame whose task the labeler has not recorded yet, and 503 when the document store
  fails in a way a retry can fix (unavailable, deadline, contention): the vendor retries both.

Label Studio waits 1 s and never retries: the handler does one transaction, and
``framesift reconcile`` recovers what a lost call missed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from pydantic import BaseModel, SecretStr, ValidationError

from framesift import rejected_callbacks
from framesift.annotations import LabelRules, store_all
from framesift.errors import (
    DocumentTooLarge,
    InvalidAnnotation,
    NotYetSent,
    PermanentError,
    UnknownFrame,
)
from framesift.logs import bind_context, get_logger, traced
from framesift.ports import DocumentStore
from framesift.vendors.registry import VENDORS, Callback

log = get_logger(__name__)


class HttpRequest(Protocol):
    """What the receiver reads of a WSGI request (Flask's in the function, werkzeug's in
    ``framesift serve``); their headers look up names case-insensitively."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def stream(self) -> IO[bytes]: ...


class Reply(BaseModel):
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Route:
    vendor: str
    callback: Callback
    secrets: tuple[SecretStr, ...]  # the current one, and the previous one while rotating
    payload: Any  # the callback's model (Callback.payload_model), imported with the route

    @property
    def header(self) -> str:
        return self.callback.header


@dataclass(frozen=True)
class WebhookConfig:
    """The settings the webhook reads (each named as in :class:`~framesift.config.Settings`)."""

    project: str
    webhook_max_bytes: int
    # The secrets each calling-back vendor's callbacks may carry, by vendor name: the current
    # one and, while a rotation has it, the previous one (registry.callback_secrets).
    callback_secrets: Mapping[str, tuple[SecretStr, ...]]
    rules: LabelRules  # what a stored label may be


class CallbackReceiver:
    def __init__(self, documents: DocumentStore, config: WebhookConfig) -> None:
        self._documents = documents
        self._project = config.project
        self._max_bytes = config.webhook_max_bytes
        self._rules = config.rules
        self._routes: dict[str, Route] = {
            spec.name: Route(
                spec.name,
                spec.callback,
                config.callback_secrets.get(spec.name, ()),
                spec.callback.payload_model(),
            )
            for spec in VENDORS.values()
            if spec.callback is not None
        }

    def receive_request(self, request: HttpRequest) -> Reply:
        return self.receive(
            request.method,
            request.path,
            request.headers,
            request.content_length,
            lambda limit: request.stream.read(limit),
        )

    def receive(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        content_length: int | None,
        read_body: Callable[[int], bytes],
    ) -> Reply:
        trace = headers.get("traceparent") or headers.get("X-Cloud-Trace-Context")
        with traced(self._project, trace):
            route = self._routes.get(path.rstrip("/").removeprefix("/"))  # the whole path
            if route is None:
                known = " or ".join(f"/{name}" for name in self._routes)
                return _reply(404, f"no such route {path!r}; use {known}")
            if method != "POST":
                return _reply(405, "callbacks are POSTed")
            bind_context(vendor=route.vendor)
            if not route.secrets:
                log.error("callback refused: no secret is configured for %s", route.vendor)
                return _reply(503, f"{route.vendor} callbacks are not configured")
            given = headers.get(route.header, "").encode()
            # Each accepted secret compared in constant time, all of them every time.
            matches = [
                hmac.compare_digest(given, s.get_secret_value().encode()) for s in route.secrets
            ]
            if not any(matches):
                log.warning(
                    "callback refused: %s header missing or wrong",
                    route.header,
                    extra={"fields": {"header_present": bool(given)}},
                )
                return _reply(401, f"missing or wrong {route.header} header")
            if content_length is not None and content_length > self._max_bytes:
                return _reply(413, f"body over {self._max_bytes} bytes")
            raw = read_body(self._max_bytes + 1)
            if len(raw) > self._max_bytes:
                return _reply(413, f"body over {self._max_bytes} bytes")
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                return _reply(400, f"body is not JSON: {exc}")
            try:
                records = route.payload.model_validate(body).records()
            except (ValidationError, ValueError) as exc:
                return _reply(422, f"not a {route.vendor} callback: {_summary(exc)}")
            try:
                result = store_all(self._documents, records, self._rules)
            except (UnknownFrame, InvalidAnnotation) as exc:
                log.warning("callback refused: %s", exc)
                return _reply(422, str(exc))
            except NotYetSent as exc:
                log.info("callback too early: %s", exc)
                return _reply(409, f"{exc}; retry later")
            except PermanentError as exc:
                # The store refuses it (too large even in parts, a value it cannot hold): a
                # retry would be refused too, so it is kept for an operator to replay.
                return self._rejected(route.vendor, raw, exc)
            except Exception as exc:
                log.exception("callback not stored; the vendor should retry")
                return _reply(503, f"storage unavailable: {type(exc).__name__}")
            log.info(
                "callback stored",
                extra={"fields": {"annotations": len(records), "written": result.stored}},
            )
            body = {"stored": result.stored, "unchanged": result.unchanged}
            if result.unknown_deletions:
                body["unknown_deletions"] = result.unknown_deletions
            return Reply(status=200, body=body)

    def _rejected(self, vendor: str, raw: bytes, exc: PermanentError) -> Reply:
        status = 413 if isinstance(exc, DocumentTooLarge) else 422
        try:
            kept = rejected_callbacks.record(self._documents, vendor, raw, str(exc), status)
        except Exception:
            log.exception("callback refused by the store and not kept; the vendor should retry")
            return _reply(503, f"storage unavailable: {type(exc).__name__}")
        return _reply(
            status, f"not stored: {exc}; kept as rejected callback {kept} to replay once fixed"
        )


def _reply(status: int, message: str) -> Reply:
    return Reply(status=status, body={"error": message})


def _summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors()[:5]
        )
    return str(exc)
