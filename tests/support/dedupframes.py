"""Dedup over real document stores for the index's tests: one-frame batches of given hashes,
and the stage built over a store."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from framesift.config import Settings, section
from framesift.documents import utcnow
from framesift.imagestats import hamming
from framesift.messages import FrameBatch, SampledFrame
from framesift.ports import DocumentStore
from framesift.stages.dedup import Dedup, DedupConfig
from tests.support.fakes import InMemoryBlobStore, RecordingPublisher


def stage(
    documents: DocumentStore,
    publisher: RecordingPublisher,
    clock: Callable[[], datetime] = utcnow,
    **settings: Any,
) -> Dedup:
    config = section(DedupConfig, Settings().model_copy(update=settings))
    return Dedup(InMemoryBlobStore(), documents, publisher, config, clock)


def one_frame_batch(video: str, collector: str, phash: str) -> FrameBatch:
    frame = SampledFrame(
        frame_id=f"{video}_0000000000",
        timestamp_ms=0,
        bucket="b",
        object_name=f"{video}.jpg",
        sha256=f"{video:0>64}"[-64:],
        phash=phash,
        sharpness=10.0,
        brightness=100.0,
    )
    return FrameBatch(
        video_doc_id=video,
        collector=collector,
        video_id=video,
        segment_index=0,
        batch_index=0,
        batch_count=1,
        frames=[frame],
    )


def flipped(value: int, rng: random.Random, bits: int) -> str:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return f"{value:016x}"


def hashes_near_one_another(seed: int, count: int) -> list[str]:
    """Random hashes and hashes 1..14 bits from an earlier one (within t and just past it)."""
    rng = random.Random(seed)
    made = [f"{rng.getrandbits(64):016x}"]
    while len(made) < count:
        if rng.random() < 0.4:
            made.append(f"{rng.getrandbits(64):016x}")
        else:
            made.append(flipped(int(rng.choice(made), 16), rng, rng.randint(1, 14)))
    return made


def exhaustive(hashes: list[str], threshold: int = Settings().dedup_threshold) -> list[str | None]:
    """Each hash's decision by comparing it with every kept one: None (kept) or the kept hash it
    repeats (the closest; ties: the smallest, as phashindex.nearest)."""
    kept: list[str] = []
    decided: list[str | None] = []
    for phash in hashes:
        close = [(hamming(phash, k), int(k, 16), k) for k in kept]
        within = [c for c in close if c[0] <= threshold]
        if within:
            decided.append(min(within)[2])
        else:
            kept.append(phash)
            decided.append(None)
    return decided


def clustered_hashes(seed: int, count: int, fixed_bits: int = 24) -> list[str]:
    """Hashes of one hot cluster: their top ``fixed_bits`` one centre's, the others random
    (most pairs far apart, so most are kept), and a third of them 1..14 bits from an earlier
    one (near duplicates and hashes just past t). The chains whose first bands lie in the fixed
    bits send every kept frame to one leaf: a hot leaf far under the cap."""
    rng = random.Random(seed)
    centre = rng.getrandbits(fixed_bits) << (64 - fixed_bits)
    made: list[str] = []
    while len(made) < count:
        if made and rng.random() < 1 / 3:
            made.append(flipped(int(rng.choice(made), 16), rng, rng.randint(1, 14)))
        else:
            made.append(f"{centre | rng.getrandbits(64 - fixed_bits):016x}")
    return made
