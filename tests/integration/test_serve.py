"""`framesift serve`'s webhook over real HTTP: the receiver is mounted under /webhook, as a
deployed function is under its URL, and matches the path below it whole."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from framesift import bootstrap
from framesift.config import Backend, Settings
from framesift.serve import LocalServer
from framesift.topology import Collections
from framesift.vendors.registry import SCALE_CALLBACK
from tests.support.payloads import FRAME, scale_callback, sent_frame

SCALE_KEY = "scale-key-for-tests"


def test_callbacks_are_received_at_webhook_scale_and_nowhere_below_it(tmp_path):
    settings = Settings(
        backend=Backend.EMBEDDED,
        workdir=tmp_path,
        scale_callback_auth_key=SecretStr(SCALE_KEY),
    )
    adapters = bootstrap.build_adapters(settings)
    adapters.documents.create(Collections.FRAMES, FRAME, sent_frame(FRAME, "scale", "t1"))
    headers = {SCALE_CALLBACK.header: SCALE_KEY}

    with LocalServer(settings, adapters, "127.0.0.1", 0) as server:
        nested = requests.post(
            f"{server.url}/webhook/x/scale", json=scale_callback(), headers=headers, timeout=10
        )
        assert adapters.documents.get(Collections.ANNOTATIONS, "scale~t1") is None
        received = requests.post(
            f"{server.url}/webhook/scale", json=scale_callback(), headers=headers, timeout=10
        )

    assert nested.status_code == 404, nested.text
    assert received.status_code == 200, received.text
    assert adapters.documents.get(Collections.ANNOTATIONS, "scale~t1") is not None
