"""A local stand-in for Scale's task API, at the HTTP level, with Scale's shapes.

Scale is a SaaS the tests cannot run. This serves the endpoints the labeler uses, as documented
(https://docs.scale.com/reference) and as ``scaleapi`` parses them:

- ``POST /v1/task/imageannotation``: 200 with the task (``task_id``, ``status: pending``,
  ``params``, ``metadata``, ``unique_id``, ``callback_url``, ...); a ``unique_id`` already used:
  409 ``{"status_code": 409, "error": ...}``; a wrong API key (HTTP basic, key as user): 401;
- ``GET /v1/tasks?unique_id=`` or ``?project=&updated_after=&limit=&next_token=``: ``{"docs":
  [...], "total", "limit", "offset", "has_more", "next_token"}``, oldest update first, a page of
  ``limit`` (default 100) at a time;
- ``GET /v1/task/{id}``.

``fail_next(429, 500, ...)`` makes the next requests answer those statuses, as Scale does when
rate-limited or down.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

API_KEY = "live_fake_scale_key_0000"


class FakeScale:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.page_size = 100  # Scale's default page; a test lowers it to see paging
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeScale:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def fail_always(self, *statuses: int) -> None:
        """Answer these statuses in turn until :meth:`recover`."""
        self.fail_next(*(list(statuses) * 10_000))

    def recover(self) -> None:
        with self._lock:
            self._failures.clear()

    def reset(self) -> None:
        with self._lock:
            self.tasks.clear()
            self.requests.clear()
            self.page_size = 100
        self.recover()

    def complete(
        self, task_id: str, annotations: list[dict[str, Any]], status: str = "completed"
    ) -> dict[str, Any]:
        """What an annotator finishing a task does at Scale: its status, response and times
        (the callback it would post is left to the test, which may lose it)."""
        with self._lock:
            task = self.tasks[task_id]
            now = datetime.now(UTC).isoformat()
            task.update({"status": status, "updated_at": now, "completed_at": now})
            task["response"] = {"annotations": annotations}
            return dict(task)

    def by_unique_id(self, unique_id: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks.values() if t.get("unique_id") == unique_id]

    def _app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.method, request.path))
            if not self._authorised(request):
                return _json({"status_code": 401, "error": "Please provide a valid API key."}, 401)
            if self._failures:
                status = self._failures.popleft()
                return _json({"status_code": status, "error": f"injected {status}"}, status)
            if request.method == "POST" and request.path == "/v1/task/imageannotation":
                return self._create(request.get_json())
            if request.method == "GET" and request.path == "/v1/tasks":
                return self._list(request.args)
            if request.method == "GET" and request.path.startswith("/v1/task/"):
                task = self.tasks.get(request.path.rsplit("/", 1)[1])
                if task is None:
                    return _json({"status_code": 404, "error": "Task not found"}, 404)
                return _json(task)
            return _json({"status_code": 404, "error": "Not found"}, 404)

    def _list(self, args: Any) -> Response:
        unique_id = args.get("unique_id")
        docs = self.by_unique_id(unique_id) if unique_id else list(self.tasks.values())
        if args.get("project"):
            docs = [t for t in docs if t.get("project") == args["project"]]
        if args.get("updated_after"):
            after = datetime.fromisoformat(args["updated_after"])
            docs = [t for t in docs if datetime.fromisoformat(t["updated_at"]) > after]
        docs.sort(key=lambda t: (t["updated_at"], t["task_id"]))
        limit = int(args.get("limit") or self.page_size)
        start = int(args.get("next_token") or 0)
        page = docs[start : start + limit]
        more = start + limit < len(docs)
        return _json(
            {
                "docs": page,
                "total": len(docs),
                "limit": limit,
                "offset": start,
                "has_more": more,
                "next_token": str(start + limit) if more else None,
            }
        )

    @staticmethod
    def _authorised(request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
        return header == expected

    def _create(self, body: dict[str, Any]) -> Response:
        unique_id = body.get("unique_id")
        if unique_id and self.by_unique_id(unique_id):
            return _json(
                {
                    "status_code": 409,
                    "error": f'The unique_id ("{unique_id}") is already used for a different '
                    "task. Check the existing task or clear the unique_id.",
                },
                409,
            )
        for required in ("attachment", "geometries"):
            if required not in body:
                return _json({"status_code": 400, "error": f"Missing {required}"}, 400)
        problem = _hypothesis_problem(body)
        if problem:
            return _json({"status_code": 400, "error": problem}, 400)
        task_id = uuid.uuid4().hex[:24]
        now = datetime.now(UTC).isoformat()
        task = {
            "task_id": task_id,
            "created_at": now,
            "updated_at": now,
            "type": "imageannotation",
            "status": "pending",
            "instruction": body.get("instruction", ""),
            "callback_url": body.get("callback_url"),
            "project": body.get("project"),
            "unique_id": unique_id,
            "metadata": body.get("metadata", {}),
            "params": {
                "attachment": body["attachment"],
                "attachment_type": body.get("attachment_type", "image"),
                "geometries": body["geometries"],
                **({"hypothesis": body["hypothesis"]} if "hypothesis" in body else {}),
            },
            "is_test": False,
        }
        self.tasks[task_id] = task
        return _json(task)


def _hypothesis_problem(body: dict[str, Any]) -> str | None:
    """Scale's checks of a hypothesis: annotations in a response's shape, of the geometries
    asked for, with labels among their objects_to_annotate."""
    if "hypothesis" not in body:
        return None
    annotations = (body["hypothesis"] or {}).get("annotations")
    if not isinstance(annotations, list):
        return "hypothesis.annotations must be an array"
    for annotation in annotations:
        geometry = body["geometries"].get(annotation.get("type"))
        if geometry is None:
            return f"hypothesis annotation type {annotation.get('type')!r} is not in geometries"
        if annotation.get("label") not in geometry.get("objects_to_annotate", []):
            return f"hypothesis label {annotation.get('label')!r} is not an object to annotate"
        if annotation["type"] == "box" and any(
            not isinstance(annotation.get(key), int | float)
            for key in ("left", "top", "width", "height")
        ):
            return "a hypothesis box needs numeric left, top, width and height"
    return None


def _json(body: Any, status: int = 200) -> Response:
    import json

    return Response(json.dumps(body), status=status, mimetype="application/json")
