"""The webhook's entry point, called with the request a vendor's callback makes."""

import flask
import pytest

from framesift import runtime
from framesift.topology import WEBHOOK, Collections
from framesift.vendors.registry import SCALE_CALLBACK
from tests.support.entry_points import entry_point
from tests.support.payloads import FRAME, scale_callback, store_sent_frames

KEY = "scale-callback-key-for-main-test"


@pytest.fixture
def callback_settings(function_settings, monkeypatch):
    monkeypatch.setenv("FRAMESIFT_SCALE_CALLBACK_AUTH_KEY", KEY)
    from framesift.config import get_settings

    get_settings.cache_clear()
    runtime.callbacks.cache_clear()
    return get_settings()


def _post(receive_callback, body, key):
    app = flask.Flask(__name__)
    with app.test_request_context(
        "/scale", method="POST", json=body, headers={SCALE_CALLBACK.header: key}
    ):
        return receive_callback(flask.request)


def test_a_scale_callback_is_stored_once_however_often_delivered(callback_settings):
    receive_callback = entry_point(WEBHOOK)
    documents = runtime.adapters().documents
    store_sent_frames(documents)

    first = _post(receive_callback, scale_callback(), KEY)
    again = _post(receive_callback, scale_callback(), KEY)

    assert (first.status_code, first.json) == (200, {"stored": 1, "unchanged": 0})
    assert (again.status_code, again.json) == (200, {"stored": 0, "unchanged": 1})
    assert (documents.get(Collections.FRAMES, FRAME) or {})["labeling_status"] == "labeled"


def test_a_wrong_key_is_refused_and_nothing_stored(callback_settings):
    receive_callback = entry_point(WEBHOOK)

    response = _post(receive_callback, scale_callback(), "not-the-key")

    assert response.status_code == 401
    assert runtime.adapters().documents.get(Collections.ANNOTATIONS, "scale~t1") is None


def test_a_callback_for_another_task_is_refused_with_422(callback_settings):
    receive_callback = entry_point(WEBHOOK)
    store_sent_frames(runtime.adapters().documents)

    response = _post(receive_callback, scale_callback(task_id="t-foreign"), KEY)

    assert response.status_code == 422
    assert "not the task framesift created" in response.json["error"]
