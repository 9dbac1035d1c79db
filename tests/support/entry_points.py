"""Calling a function's entry point as its runtime does: loaded from ``functions/{name}/main.py``
and handed the CloudEvent a Pub/Sub push becomes (python-docs-samples' ``main_test.py`` style)."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from framesift.events import PubSubMessage, push_body
from framesift.topology import FunctionSpec

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def entry_point(spec: FunctionSpec) -> Callable[..., Any]:
    """The entry point of ``functions/{spec.name}/main.py``, named as the topology says."""
    path = FUNCTIONS_DIR / spec.name / "main.py"
    module_spec = importlib.util.spec_from_file_location(f"functions_{spec.name}_main", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, spec.entry_point)  # type: ignore[no-any-return]


def pubsub_event(
    topic: str,
    data: bytes,
    attributes: Mapping[str, str] | None = None,
    message_id: str | None = None,
    project: str = "framesift-local",
) -> CloudEvent:
    """The CloudEvent functions-framework makes of a Pub/Sub push of ``data`` on ``topic``."""
    message = PubSubMessage.of(data, attributes or {}, message_id or uuid.uuid4().hex)
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": f"//pubsub.googleapis.com/projects/{project}/topics/{topic}",
            "id": message.message_id,
        },
        push_body(message, f"projects/{project}/subscriptions/{topic}-test"),
    )
