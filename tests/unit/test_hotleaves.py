"""The benchmark's steady-state model of hot leaves split by write rate: the hottest leaf
under the split rate at every rate, lookups still exact over the split chains, and the tail's
vectorised walk equal to one node by node."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from framesift import dedupindex, tailindex
from framesift_dev import hotleaves, indexbench

G = dedupindex.Geometry()


def _hot_sample(n: int, seed: int) -> np.ndarray:
    """Half random hashes, half sharing their top 24 bits (one hot cluster)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, n, dtype=np.uint64)
    hot = hashes[: n // 2]
    hashes[: n // 2] = (hot & np.uint64(2**40 - 1)) | np.uint64(0xABCDEF << 40)
    return hashes


def test_sustained_is_the_highest_rate_whose_hottest_document_takes_at_most_one_write_per_s():
    splits = [
        hotleaves.HotSplit(0, 0.01, 75, 0),
        hotleaves.HotSplit(50, 0.01, 75, 0),
        hotleaves.HotSplit(100, 0.01, 80, 3),
        hotleaves.HotSplit(150, 0.01, 85, 5),  # 1.5 writes/s: over
        hotleaves.HotSplit(200, 0.01, 90, 9),
    ]
    found = hotleaves.sustained(splits)
    assert found is not None and found.rate == 100
    assert splits[0].write_bound == 100
    assert hotleaves.sustained(splits[3:]) is None


def test_split_chains_keep_every_hash_in_one_leaf_per_chain_under_the_split_rate_and_exact():
    n, rate = 2000, 200.0
    sample = _hot_sample(n, seed=1)
    docs = indexbench.build_chains(sample, G)
    split = hotleaves.chains_split(docs, n, rate, G)
    most = G.split_rate * n / rate  # 5 entries
    leaves = {i: d for i, d in split.items() if not dedupindex.is_split(d)}
    assert max(dedupindex.entries([d]) for d in leaves.values()) <= most
    assert sum(dedupindex.is_split(d) for d in split.values()) > sum(
        dedupindex.is_split(d) for d in docs.values()
    )
    placed: Counter[str] = Counter()
    for doc_id, doc in leaves.items():
        chain = doc_id.split("~")[-2]
        hashes = bytes(doc.get("hashes") or b"")
        placed.update(f"{chain}:{hashes[i : i + 8].hex()}" for i in range(0, len(hashes), 8))
    assert set(placed.values()) == {1} and len(placed) == G.chains * len(set(sample.tolist()))
    rng = np.random.default_rng(2)
    for index in rng.integers(0, n, 50):
        flips = rng.choice(64, size=int(rng.integers(0, G.threshold + 1)), replace=False)
        query = f"{int(sample[index]) ^ sum(1 << int(b) for b in flips):016x}"
        found, read, _ = indexbench.chain_lookup(query, split, G)
        match = dedupindex.nearest(query, read, found, G)
        best = int(np.bitwise_count(sample ^ np.uint64(int(query, 16))).min())
        assert match is not None and match.distance == best


def test_chains_at_the_ladders_rates_stay_under_the_split_rate_and_read_more_as_they_split():
    n = 2000
    sample = _hot_sample(n, seed=3)
    docs = indexbench.build_chains(sample, G)
    queries = [f"{int(v):016x}" for v in _hot_sample(40, seed=4)]
    splits = hotleaves.chains(docs, n, G, queries, rates=(10, 100, 1000))
    assert [s.rate for s in splits] == [0, 10, 100, 1000]
    assert splits[0].rate_splits == 0 and splits[0].docs_read == 75.0  # the cap's shape
    assert splits[0].hottest_share == max(dedupindex.entries([d]) for d in docs.values()) / n
    for s in splits[1:]:
        assert s.hottest_share * s.rate <= G.split_rate
    reads = [s.docs_read for s in splits]
    assert reads == sorted(reads) and reads[-1] > reads[0]


def _tail_by_nodes(
    sample: np.ndarray, g: tailindex.TailGeometry, rate: float
) -> tuple[float, float]:
    """The hottest leaf's share and the documents read per lookup, node by node with
    tailindex's keys: a node splits iff it holds more than the cap or its writes pass."""
    values = [int(v) for v in sample]
    limit = min(g.cap, g.split_rate * len(values) / rate if rate else math.inf)
    hottest, read = 0, 0
    for table in range(g.tables):
        counts = [
            Counter(tailindex.key(v, table, d, g) for v in values) for d in range(g.max_depth + 1)
        ]
        for value in values:
            depth = 0
            while depth < g.max_depth and counts[depth][tailindex.key(value, table, depth, g)] > (
                limit
            ):
                depth += 1
            hottest = max(hottest, counts[depth][tailindex.key(value, table, depth, g)])
            read += depth + 1
    return hottest / len(values), read / len(values)


@pytest.mark.parametrize("rate", [0, 20, 200])
def test_the_tails_vectorised_walk_is_the_node_by_node_one(rate):
    g = tailindex.TailGeometry(tables=3, cap=40, first_bits=3, split_bits=2)
    sample = _hot_sample(400, seed=5)
    for table in range(g.tables):
        permuted = indexbench.permute(sample[:20], indexbench.permutation(table))
        assert permuted.tolist() == [tailindex.permuted(int(v), table) for v in sample[:20]]
    [split] = [s for s in hotleaves.tail(sample, g, rates=(20, 200)) if s.rate == rate]
    hottest, read = _tail_by_nodes(sample, g, rate)
    assert math.isclose(split.hottest_share, hottest) and math.isclose(split.docs_read, read)
    if rate:
        assert split.hottest_share * rate <= g.split_rate


def test_a_simulated_tail_splits_by_the_scaled_cap_and_the_samples_shares():
    g = tailindex.TailGeometry(tables=3, cap=40, first_bits=3, split_bits=2)
    sample = _hot_sample(400, seed=5)
    # Ten times the sample: a node splits at 4 sample entries (40 / 10), as a scope of 4000.
    scaled = hotleaves.tail(sample, g, rates=(20,), scale=10.0)
    bigger = hotleaves.tail(np.repeat(sample, 10), g, rates=(20,))
    for a, b in zip(scaled, bigger, strict=True):
        assert math.isclose(a.hottest_share, b.hottest_share)
        assert math.isclose(a.docs_read, b.docs_read)
    assert scaled[0].docs_read > hotleaves.tail(sample, g, rates=())[0].docs_read
