"""Multi-index hashing: every hash within the threshold is found, by reading t + 1 buckets."""

from __future__ import annotations

import random

import pytest

from framesift import phashindex
from framesift.errors import InvalidName
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
    stored = [f"{rng.getrandbits(64):016x}" for _ in range(3000)]
    buckets: dict[str, dict] = {}
    for phash in stored:
        ids = phashindex.bucket_ids("scope", phash, threshold)
        buckets.update(phashindex.added({i: buckets.get(i) for i in ids}, phash))

    for query_index in range(400):
        query = _flip(rng.choice(stored), rng.randint(0, threshold + 3), rng)
        ids = phashindex.bucket_ids("scope", query, threshold)
        found = phashindex.nearest(query, (buckets.get(i) for i in ids), threshold)

        brute = min((hamming(query, phash), int(phash, 16)) for phash in stored)
        if brute[0] <= threshold:
            assert found is not None, f"query {query_index} missed a hash at {brute[0]} bits"
            assert (found.distance, int(found.phash, 16)) == brute
        else:
            assert found is None


def test_buckets_pack_eight_bytes_per_hash():
    ids = phashindex.bucket_ids("s", "00000000000000ff", 10)
    first = phashindex.added(dict.fromkeys(ids), "00000000000000ff")
    second = phashindex.added(first, "00000000000000fe")
    assert all(bucket["hashes"] == bytes.fromhex("00000000000000ff") for bucket in first.values())
    assert second[ids[0]]["hashes"] == bytes.fromhex("00000000000000ff00000000000000fe")
    assert phashindex.nearest("00000000000000fc", second.values(), 10) == phashindex.Neighbour(
        "00000000000000fe", 1
    )


def test_a_lookup_reads_threshold_plus_one_buckets_of_its_scope():
    ids = phashindex.bucket_ids("collector:cam", "0123456789abcdef", 10)
    assert len(ids) == len(set(ids)) == 11
    assert all(i.startswith("collector:cam~b") for i in ids)


def test_a_hash_of_another_colour_is_no_neighbour_and_old_buckets_still_match():
    phash, red, teal = "00ff00ff00ff00ff", "40404040" + "3131315e" * 2, "40404040" + "4a4a4a22" * 2
    old_bucket = {"hashes": int(phash, 16).to_bytes(8, "big")}  # written before colour layouts
    [new_bucket] = phashindex.added({"b": old_bucket}, "00ff00ff00ff00fe", red).values()
    assert len(new_bucket["hashes"]) == 16 and len(new_bucket["layouts"]) == 24

    # The old hash (unknown colour) matches any colour; the new one only its own.
    assert phashindex.nearest(phash, [new_bucket], 2, teal).phash == phash
    only_new = {"hashes": new_bucket["hashes"][8:], "layouts": new_bucket["layouts"][12:]}
    assert phashindex.nearest(phash, [only_new], 2, red, 12).distance == 1
    assert phashindex.nearest(phash, [only_new], 2, teal, 12) is None
    assert phashindex.nearest(phash, [only_new], 2).distance == 1  # no layout given: any


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("collector:/", "a path"),  # the collector of "/a.mp4", had it reached the index
        ("collector:" + "c" * 1500, r"over 1500 \(Firestore's limit\)"),
    ],
)
def test_an_index_id_firestore_would_refuse_is_a_permanent_failure(scope, reason):
    with pytest.raises(InvalidName, match=reason):
        phashindex.bucket_ids(scope, "0123456789abcdef", 10)
    with pytest.raises(InvalidName, match=reason):
        phashindex.owner_id(scope, "0123456789abcdef")
