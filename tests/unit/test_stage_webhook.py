"""The webhook's receiver (stages/webhook.py) over an in-memory document store, without HTTP: a
callback delivered twice is stored once, one refused is answered with the status that tells the
vendor whether to retry and stores nothing, and a store outage is a 503 the vendor's retry
recovers from. (tests/unit/test_webhook.py covers the parsing and rules through the function.)"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from framesift.bootstrap import callback_receiver
from framesift.config import Settings
from framesift.stages.webhook import CallbackReceiver, Reply
from framesift.topology import Collections
from framesift.vendors.registry import SCALE_CALLBACK
from tests.support.fakes import FlakyDocumentStore, InMemoryDocumentStore
from tests.support.payloads import FRAME, scale_callback, sent_frame

SCALE_KEY = "scale-key-for-tests"


def _receiver(documents: InMemoryDocumentStore, key: str | None = SCALE_KEY) -> CallbackReceiver:
    settings = Settings(scale_callback_auth_key=SecretStr(key) if key is not None else None)
    documents.create(Collections.FRAMES, FRAME, sent_frame(FRAME, "scale", "t1"))
    return callback_receiver(settings, documents)


def _post(receiver: CallbackReceiver, body: bytes, key: str = SCALE_KEY) -> Reply:
    headers = {SCALE_CALLBACK.header: key}
    return receiver.receive("POST", "/scale", headers, len(body), lambda limit: body[:limit])


CALLBACK = json.dumps(scale_callback()).encode()


def test_a_callback_delivered_twice_is_stored_once():
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents)

    first = _post(receiver, CALLBACK)
    stored = documents.get(Collections.ANNOTATIONS, "scale~t1")
    again = _post(receiver, CALLBACK)

    assert (first.status, first.body) == (200, {"stored": 1, "unchanged": 0})
    assert (again.status, again.body) == (200, {"stored": 0, "unchanged": 1})
    assert stored is not None and stored["frame_id"] == FRAME
    assert documents.get(Collections.ANNOTATIONS, "scale~t1") == stored  # not written again
    frame = documents.get(Collections.FRAMES, FRAME)
    assert frame is not None and frame["labeling_status"] == "labeled"


@pytest.mark.parametrize(
    ("configured", "given", "body", "status"),
    [
        (SCALE_KEY, "not-the-key", CALLBACK, 401),  # the vendor's retry cannot fix it
        (None, SCALE_KEY, CALLBACK, 503),  # this deployment's fault: the vendor retries
        # An empty secret (a variable set to "") is none: a request without the header does
        # not match it.
        ("", "", CALLBACK, 503),
        (SCALE_KEY, SCALE_KEY, json.dumps(scale_callback(task_id="t9")).encode(), 422),
    ],
)
def test_a_refused_callback_stores_nothing(configured, given, body, status):
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents, configured)
    frame = documents.get(Collections.FRAMES, FRAME)

    reply = _post(receiver, body, given)

    assert reply.status == status, reply.body
    assert list(documents.changed_since(Collections.ANNOTATIONS, None)) == []
    assert documents.get(Collections.FRAMES, FRAME) == frame


def test_a_store_outage_is_a_503_and_the_vendors_retry_stores_the_callback():
    documents = FlakyDocumentStore()
    receiver = _receiver(documents)
    documents.down = True

    refused = _post(receiver, CALLBACK)
    documents.down = False
    retried = _post(receiver, CALLBACK)

    assert (refused.status, refused.body) == (
        503,
        {"error": "storage unavailable: BackendUnavailable"},
    )
    assert (retried.status, retried.body) == (200, {"stored": 1, "unchanged": 0})
    assert documents.get(Collections.ANNOTATIONS, "scale~t1") is not None


def test_the_previous_secret_is_accepted_while_set_and_refused_once_retired():
    documents = InMemoryDocumentStore()
    documents.create(Collections.FRAMES, FRAME, sent_frame(FRAME, "scale", "t1"))
    rotating = Settings(
        scale_callback_auth_key=SecretStr("new-key"),
        scale_callback_auth_key_previous=SecretStr(SCALE_KEY),
    )
    receiver = callback_receiver(rotating, documents)
    retired = callback_receiver(
        rotating.model_copy(update={SCALE_CALLBACK.previous.setting: None}), documents
    )

    assert _post(receiver, CALLBACK, SCALE_KEY).status == 200  # sent before the vendor changed
    assert _post(receiver, CALLBACK, "new-key").status == 200
    assert _post(receiver, CALLBACK, "another-key").status == 401
    assert _post(retired, CALLBACK, SCALE_KEY).status == 401
    assert _post(retired, CALLBACK, "new-key").status == 200
