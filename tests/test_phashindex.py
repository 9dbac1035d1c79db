"""Multi-index hashing: every hash within the threshold is found, by reading t + 1 buckets."""

from __future__ import annotations

import random

import pytest

from framesift import phashindex
from framesift.imagestats import hamming


@pytest.mark.parametrize("threshold", [0, 4, 10, 16])
def test_bands_cover_the_64_bits_once(threshold):
    bands = phashindex.bands(threshold)
    assert len(bands) == threshold + 1
    assert sum(width for _, width in bands) == 64
    mask = 0
    for shift, width in bands:
        band = ((1 << width) - 1) << shift
        assert mask & band == 0
        mask |= band
    assert mask == (1 << 64) - 1


def _flip(phash: str, bits: int, rng: random.Random) -> str:
    value = int(phash, 16)
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return f"{value:016x}"


@pytest.mark.parametrize("threshold", [6, 10])
def test_recall_is_one_at_the_threshold(threshold):
    rng = random.Random(threshold)
    stored = {f"f{i}": f"{rng.getrandbits(64):016x}" for i in range(3000)}
    buckets: dict[str, dict] = {}
    for frame_id, phash in stored.items():
        ids = phashindex.bucket_ids("scope", phash, threshold)
        read = {bucket_id: buckets.get(bucket_id) for bucket_id in ids}
        buckets.update(phashindex.added(read, frame_id, phash))

    for query_index in range(400):
        base = stored[f"f{rng.randrange(3000)}"]
        query = _flip(base, rng.randint(0, threshold + 3), rng)
        ids = phashindex.bucket_ids("scope", query, threshold)
        found = phashindex.nearest(query, (buckets.get(i) for i in ids), threshold)

        brute = min(
            ((hamming(query, phash), frame_id) for frame_id, phash in stored.items()),
        )
        if brute[0] <= threshold:
            assert found is not None, f"query {query_index} missed a hash at {brute[0]} bits"
            assert (found.distance, found.frame_id) == brute
        else:
            assert found is None


def test_a_lookup_reads_threshold_plus_one_buckets_of_its_scope():
    ids = phashindex.bucket_ids("collector:cam", "0123456789abcdef", 10)
    assert len(ids) == len(set(ids)) == 11
    assert all(i.startswith("collector:cam~b") for i in ids)
