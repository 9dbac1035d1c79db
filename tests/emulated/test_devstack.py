"""``framesift dev up`` / ``status`` / ``down``: a second, private stack, torn down and checked."""

from __future__ import annotations

import stat

import pytest

from framesift_dev.devstack import DevStack, DevStackError
from framesift_dev.services import alive, tcp_open

pytestmark = pytest.mark.emulated


def test_up_status_down_leaves_no_process(tmp_path):
    stack = DevStack(state_dir=tmp_path / "stack")
    state = stack.up()
    try:
        names = [s.name for s in state.services]
        assert names == [
            "pubsub",
            "firestore",
            "gcs",
            "bigquery",
            "function-webhook",  # first: the others are given its URL
            "function-sampler",
            "function-dedup",
            "function-labeler",
            "function-exporter",
        ]
        assert stack.status() == dict.fromkeys(names, True)
        # It holds the stack's webhook secrets: its owner's only.
        assert stat.S_IMODE(stack.state_file.stat().st_mode) == 0o600
        assert state.env["FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"] in stack.state_file.read_text()
        with pytest.raises(DevStackError, match="already running"):
            DevStack(state_dir=tmp_path / "stack").up()
    finally:
        stopped = stack.down()

    assert stopped == list(reversed(names))
    for service in state.services:
        assert not alive(service.pid), f"{service.name} is still running"
        assert not tcp_open(service.port), f"{service.name}'s port is still open"
    assert stack.status() == {}
    assert DevStack(state_dir=tmp_path / "stack").down() == []
