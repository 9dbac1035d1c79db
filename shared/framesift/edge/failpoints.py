"""Failpoints: named places in the edge agent's steps where it kills itself, for the tests that
check it resumes without losing or duplicating anything (tests/emulated/test_edge_emulated.py).

``FRAMESIFT_EDGE_FAILPOINT=name`` kills the process (SIGKILL: no cleanup, as a power cut) the
first time it reaches ``name``; ``name:N`` the N-th time. The names, in the order of a video's
steps, are :data:`FAILPOINTS`. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAILPOINT_ENV = "FRAMESIFT_EDGE_FAILPOINT"

FAILPOINTS = {
    "announced": "a file announced on RabbitMQ in the journal, before the queue is acked",
    "hashed": "the video's size and SHA-256 read, before the journal records them",
    "mid-sift": "the local sampler done, dedup part way through its frames",
    "sifted": "sampled and deduplicated locally, before the journal records it",
    "video-recorded": "the video's document created in the cloud, before the journal says so",
    "frame-put": "a kept frame's JPEG uploaded, before its document",
    "frame-recorded": "a kept frame's JPEG and document uploaded, before the journal says so",
    "published": "the frames handed to the cloud's dedup, before the journal says so",
    "finished": "the video's document final in the cloud, before the journal says so",
}

_reached: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kill this process here if ``FRAMESIFT_EDGE_FAILPOINT`` names this place (and count)."""
    if name not in FAILPOINTS:
        raise KeyError(f"no failpoint {name!r}")
    wanted = os.environ.get(FAILPOINT_ENV)
    if not wanted:
        return
    where, _, nth = wanted.partition(":")
    if where != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
