"""Hot leaves split by write rate, in steady state: the benchmark's model of what
``dedupindex``'s and ``tailindex``'s rate splits do to the hottest document and to lookups.

Firestore sustains about 1 write per second per document, so the benchmark's ``kept/s`` is
bounded by the hottest index document's share of kept frames' writes (``1 / share``). A leaf
splits when its estimated write rate passes the geometry's ``split_rate``
(:func:`framesift.dedupindex.write_rate`), so at an offered rate of ``R`` kept frames per second,
once the scope has run at it for a few time constants, every node whose share of the writes
times ``R`` passes ``split_rate`` has split, recursively (a child still hot splits on its own
next writes), down to the deepest level (the chains' band ``t``, the tail's 64 bits). A node's
share is estimated by the built sample: its entries over the sample's size (kept frames land
where earlier ones did). The model ignores the estimate's noise (a leaf at 0.3/s sometimes splits
too: it may read a little more than modelled, never write hotter).

    python -m framesift_dev.hotleaves               # chains and tail, uniform and clustered

prints, per design, data set and size, the write bound before (cap splits only) and after (the
highest rate of the benchmark's ladder whose hottest document stays at or under 1 write/s), and
the documents a lookup reads more (the chains: :func:`framesift.dedupindex.plan` over the split
trie; the tail: one more level on the own path per split level, without the probes past split
nodes that a lookup reads too, which the benchmark counts: ``framesift bench index``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from framesift import dedupindex, tailindex
from framesift_dev import firestore_limits as fl

Docs = Mapping[str, Mapping[str, Any] | None]
GOAL_KEPT_PER_S = 500  # the goal per scope: what lookups read at it is reported too


@dataclass(frozen=True)
class HotSplit:
    """A design in steady state at ``rate`` offered kept frames per second (0: no rate
    splits, the cap's shape alone)."""

    rate: float
    hottest_share: float  # of kept frames' writes, on the hottest document
    # Documents a lookup reads (mean over the queries; the tail's: its own path, no probes).
    docs_read: float
    rate_splits: int  # nodes split by rate (not by the cap)

    @property
    def write_bound(self) -> float:
        """Kept frames per second at which the hottest document takes 1 write per second."""
        return fl.DOCUMENT_WRITES_PER_S / max(self.hottest_share, 1e-12)


def sustained(splits: Sequence[HotSplit]) -> HotSplit | None:
    """The highest rate of ``splits`` (the ladder's, rate 0 aside) at which the hottest
    document stays at or under Firestore's sustained 1 write per second (None: none does)."""
    fits = [s for s in splits if s.rate and s.rate * s.hottest_share <= fl.DOCUMENT_WRITES_PER_S]
    return max(fits, key=lambda s: s.rate, default=None)


# --- the chains -------------------------------------------------------------------------------


def most_entries(n: int, rate: float, split_rate: float) -> float:
    """The entries of a node (of ``n`` kept hashes) above which its share of the writes times
    ``rate`` passes ``split_rate``: it has split by rate (infinite at rate 0)."""
    return split_rate * n / rate if rate else float("inf")


def _parse(doc_id: str) -> tuple[str, dedupindex.Node]:
    scope, chain, path = doc_id.rsplit("~", 2)
    return scope, dedupindex.Node(int(chain[1:]), tuple(int(v, 16) for v in path.split(".")))


def _split_hot(
    scope: str, node: dedupindex.Node, hashes: bytes, most: float, g: dedupindex.Geometry
) -> dict[str, dict[str, Any]]:
    """The documents for a leaf holding ``hashes``, split while it holds more than ``most``
    (the entries at which its writes pass the split rate) and is above band ``t``."""
    if len(hashes) // 8 <= most or node.depth >= g.threshold:
        return {dedupindex.node_id(scope, node): dedupindex.leaf_doc(hashes, b"")}
    shift, width = g.bands[(node.start + node.depth + 1) % g.chains]
    docs: dict[str, dict[str, Any]] = {dedupindex.node_id(scope, node): dict(dedupindex.SPLIT_DOC)}
    for value, part, _ in dedupindex.grouped(
        hashes, b"", lambda entry: (entry >> shift) & ((1 << width) - 1)
    ):
        child = dedupindex.Node(node.start, (*node.path, value))
        docs.update(_split_hot(scope, child, part, most, g))
    return docs


def chains_split(docs: Docs, n: int, rate: float, g: dedupindex.Geometry) -> dict[str, Any]:
    """The chain documents ``docs`` (a sample of ``n`` kept hashes, as the benchmark builds
    them: leaves with their packed hashes, split nodes) with every leaf whose share of writes
    times ``rate`` passes the split rate split, recursively."""
    most = most_entries(n, rate, g.split_rate)
    result: dict[str, Any] = dict(docs)
    for doc_id, doc in docs.items():
        hashes = bytes((doc or {}).get("hashes") or b"")
        if not dedupindex.is_split(doc) and len(hashes) // 8 > most:
            result.update(_split_hot(*_parse(doc_id), hashes, most, g))
    return result


def _docs_read(scope: str, query: str, docs: Docs, g: dedupindex.Geometry) -> int:
    """The documents dedupindex's lookup reads (an absent one counts: it is read)."""
    read: dict[str, Mapping[str, Any] | None] = {}
    while missing := dedupindex.plan(scope, query, read, g).missing:
        read.update((doc_id, docs.get(doc_id)) for doc_id in missing)
    return len(read)


def chains(
    docs: Docs,
    n: int,
    g: dedupindex.Geometry,
    queries: Sequence[str],
    rates: Sequence[float] = fl.RATE_LADDER,
) -> list[HotSplit]:
    """The chains at rate 0 (the cap's shape: ``docs``) and at each of ``rates``: the hottest
    leaf's share of writes and the documents a lookup for ``queries`` reads."""
    scope = _parse(next(iter(docs)))[0]
    result = []
    for rate in (0.0, *rates):
        split = chains_split(docs, n, rate, g)
        leaves = [
            dedupindex.entries([doc]) for doc in split.values() if not dedupindex.is_split(doc)
        ]
        read = [_docs_read(scope, query, split, g) for query in queries]
        rate_splits = sum(map(dedupindex.is_split, split.values())) - sum(
            map(dedupindex.is_split, docs.values())
        )
        result.append(HotSplit(rate, max(leaves) / n, float(np.mean(read)), rate_splits))
    return result


# --- the tail ---------------------------------------------------------------------------------


def _depth_counts(ordered: np.ndarray, g: tailindex.TailGeometry) -> list[np.ndarray]:
    """For each depth, each hash's node's count (``ordered``: the sorted permuted hashes)."""
    counts = []
    for depth in range(g.max_depth + 1):
        keys = ordered >> np.uint64(64 - g.bits(depth))
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
        sizes = np.diff(starts)
        counts.append(np.repeat(sizes, sizes))
    return counts


def tail(
    sample: np.ndarray,
    g: tailindex.TailGeometry,
    rates: Sequence[float] = fl.RATE_LADDER,
    scale: float = 1.0,
) -> list[HotSplit]:
    """The tail over ``sample`` at rate 0 (the cap's shape) and at each of ``rates``: a node
    splits iff it holds more than the cap or its share of writes times the rate passes the split
    rate (both fall with depth, so a hash's leaf is the shallowest node under both). Lookups are
    the sample's own hashes (kept frames land where lookups do); each table's lookup reads the
    own path down to its leaf. With ``scale`` the scope is that many times the sample (as the
    benchmark's simulated sizes): a node holds its sample count times it against the cap, and
    its share of the writes is the sample's."""
    from framesift_dev import indexbench as ib  # its permutations (it imports this module)

    n = len(sample)
    ladder = (0.0, *rates)
    most = [min(g.cap / scale, most_entries(n, rate, g.split_rate)) for rate in ladder]
    hottest = np.zeros(len(ladder))
    levels = np.zeros(len(ladder))
    splits = np.zeros(len(ladder))
    for table in range(g.tables):
        counts = _depth_counts(np.sort(ib.permute(sample, ib.permutation(table))), g)
        for i, limit in enumerate(most):
            leaf = np.full(n, -1)
            for depth, count in enumerate(counts):
                settled = (leaf < 0) & ((count <= limit) | (depth == g.max_depth))
                leaf[settled] = depth
                hottest[i] = max(hottest[i], float(count[settled].max(initial=0)))
                unsettled = leaf < 0
                # Each split node once: its hashes' 1 / count summed.
                splits[i] += float(np.sum(1.0 / count[unsettled]))
                if not unsettled.any():
                    break
            levels[i] += leaf.mean() + 1
    return [
        HotSplit(rate, hottest[i] / n, float(levels[i]), round(splits[i] - splits[0]))
        for i, rate in enumerate(ladder)
    ]


# --- the run ----------------------------------------------------------------------------------


def report(design: str, dataset: str, n: int, splits: list[HotSplit]) -> dict[str, Any]:
    """One row: the write bound before and after, what lookups read then, and at the goal."""
    before, after = splits[0], sustained(splits)
    goal = next(s for s in splits if s.rate == GOAL_KEPT_PER_S)
    return {
        "design": design,
        "dataset": dataset,
        "n": n,
        "kept_per_s_bound_before": round(before.write_bound),
        "kept_per_s_bound_after": after.rate if after else 0,
        "hottest_share_after": round(after.hottest_share, 6) if after else None,
        "docs_read_before": round(before.docs_read, 1),
        "docs_read_after": round(after.docs_read, 1) if after else None,
        "docs_read_at_goal": round(goal.docs_read, 1),
        "docs_read_by_rate": {round(s.rate): round(s.docs_read, 1) for s in splits},
        "rate_splits": after.rate_splits if after else None,
    }


def run(sizes: list[int], queries: int, seed: int) -> Iterator[dict[str, Any]]:
    from framesift_dev import indexbench as ib  # the benchmark's data sets and built chains

    g = dedupindex.Geometry(threshold=ib.THRESHOLD)
    tail_g = tailindex.TailGeometry(threshold=ib.THRESHOLD)
    datasets = (("uniform", ib.uniform), ("clustered", ib.Clustered(np.random.default_rng(seed))))
    for dataset, generate in datasets:
        rng = np.random.default_rng(seed)
        for n in sizes:
            sample = generate(n, rng)
            fresh = [f"{int(v):016x}" for v in generate(queries, rng)]
            yield report("chains", dataset, n, chains(ib.build_chains(sample, g), n, g, fresh))
            yield report("tail", dataset, n, tail(sample, tail_g))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=32)
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    for row in run(sizes, args.queries, args.seed):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
