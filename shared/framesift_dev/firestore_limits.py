"""A simulator of Firestore's documented limits, for measuring an access pattern against them.

The emulator enforces none of these, so the dedup index's benchmark (benchmarks/index.py) runs
its documents through this instead. Sources (read 2026-12):

- Document size: https://firebase.google.com/docs/firestore/storage-size — a string is its UTF-8
  bytes + 1 (collection ids, document ids, field names, string values); a document name is the
  sum of its collection and document ids' sizes + 16; a field is its name's size + its value's
  (bytes: their length; boolean and null: 1; integer, float, timestamp: 8; map: as a document's
  fields; array: the sum of its values); a document is its name + its fields + 32.
- Limits: https://firebase.google.com/docs/firestore/quotas — a document at most 1 MiB
  (1,048,576 bytes); a commit (a batch or transaction) at most 500 writes and 10 MiB
  (the API request size); the older page also lists a maximum sustained write rate to one
  document of 1 per second (now in the best practices, below).
- Best practices: https://cloud.google.com/firestore/docs/best-practices — "limit the write rate
  to an individual document" (about 1 sustained write per second: writes above it contend and
  abort), and ramping up traffic: start at 500 operations per second to a new collection and
  increase by 50 % every 5 minutes (the 500/50/5 rule).
- Transactions: a transaction's reads are locked or checked at commit; a transaction that read a
  document another transaction then wrote and committed is aborted and retried
  (https://firebase.google.com/docs/firestore/transaction-data-contention). The retries here are
  the project's own adapter's (framesift.adapters.gcp.firestore: a random pause up to 0.05 s x
  2^attempt, at most 1 s, 10 attempts).

The contention model (:func:`simulate`) is an event simulation, not a measurement: decisions
arrive as a Poisson process at an offered rate; each reads its read set when it begins and
commits after its duration; it aborts if a document it read was written by a commit in between,
and retries after the adapter's pause. Durations come from the caller's latency model.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Firestore's document size rules are the product's own (framesift.parts stores by them).
from framesift.parts import MAX_COMMIT_WRITES as COMMIT_WRITES_LIMIT
from framesift.parts import MAX_DOCUMENT_BYTES as DOCUMENT_LIMIT
from framesift.parts import document_size
from framesift.ports import DocKey, run_change

COMMIT_BYTES_LIMIT = 10 * 1_048_576
DOCUMENT_WRITES_PER_S = 1.0
RAMP_START_OPS = 500
RAMP_GROWTH = 1.5
RAMP_STEP_MINUTES = 5
RETRY_PAUSE_S = 0.05
RETRY_MAX_PAUSE_S = 1.0
RETRY_ATTEMPTS = 10
# The offered kept frames per second the benchmark tries, in order (its `kept/s` is one of them).
RATE_LADDER = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class LimitExceeded(Exception):
    """A write Firestore would refuse."""


def ramp_minutes(ops_per_s: float) -> float:
    """Minutes the 500/50/5 rule takes a new collection to reach ``ops_per_s``."""
    if ops_per_s <= RAMP_START_OPS:
        return 0.0
    steps = math.ceil(math.log(ops_per_s / RAMP_START_OPS) / math.log(RAMP_GROWTH))
    return float(steps * RAMP_STEP_MINUTES)


@dataclass
class Counts:
    transactions: int = 0
    docs_read: int = 0
    bytes_read: int = 0
    docs_written: int = 0
    bytes_written: int = 0
    largest_document: int = 0
    largest_commit_writes: int = 0
    largest_commit_bytes: int = 0


@dataclass
class LimitedStore:
    """An in-memory document store (``get`` and ``transact`` of the DocumentStore port) that
    counts what each transaction reads and writes in Firestore's bytes, merges writes as the
    adapters do, and refuses a document or commit over Firestore's limits."""

    docs: dict[DocKey, dict[str, Any]] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)

    def _read(self, key: DocKey) -> dict[str, Any] | None:
        doc = self.docs.get(key)
        self.counts.docs_read += 1
        if doc is not None:
            self.counts.bytes_read += document_size(*key, doc)
        return dict(doc) if doc is not None else None

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self._read((collection, doc_id))

    def transact(self, keys: Sequence[DocKey], change: Callable[..., tuple[Any, Any]]) -> Any:
        docs = {key: self._read(key) for key in keys}
        writes, result = run_change(change, docs, lambda more: {k: self._read(k) for k in more})
        merged = {key: {**(self.docs.get(key) or {}), **data} for key, data in writes.items()}
        sizes = {key: document_size(*key, doc) for key, doc in merged.items()}
        commit = sum(sizes.values())
        if len(writes) > COMMIT_WRITES_LIMIT:
            raise LimitExceeded(f"{len(writes)} writes in one commit (at most 500)")
        if commit > COMMIT_BYTES_LIMIT:
            raise LimitExceeded(f"{commit} bytes in one commit (at most 10 MiB)")
        for key, size in sizes.items():
            if size > DOCUMENT_LIMIT:
                raise LimitExceeded(f"{key[1]} would be {size} bytes (at most 1 MiB)")
        self.docs.update(merged)
        c = self.counts
        c.transactions += 1
        c.docs_written += len(writes)
        c.bytes_written += commit
        c.largest_document = max(c.largest_document, *sizes.values(), 0)
        c.largest_commit_writes = max(c.largest_commit_writes, len(writes))
        c.largest_commit_bytes = max(c.largest_commit_bytes, commit)
        return result


@dataclass(frozen=True)
class Decision:
    """One kept frame's transaction as the contention model sees it."""

    reads: frozenset[str]
    writes: frozenset[str]
    seconds: float  # from its first read to its commit


@dataclass(frozen=True)
class Contention:
    rate: float  # offered decisions per second
    decisions: int
    aborts: int  # attempts that conflicted
    failed: int  # decisions that ran out of attempts
    p50_s: float
    p99_s: float

    @property
    def abort_rate(self) -> float:
        return self.aborts / max(1, self.decisions)


def simulate(decisions: Sequence[Decision], rate: float, seed: int = 0) -> Contention:
    """Run each decision once, arriving at ``rate`` per second, with conflicts and retries."""
    rng = random.Random(seed)  # noqa: S311 (a model, not a secret)
    committed: dict[str, float] = {}  # document -> time of its last committed write
    events: list[tuple[float, int, int, float, int]] = []  # (commit at, order, index, began, try)
    now = 0.0
    for index, decision in enumerate(decisions):
        now += rng.expovariate(rate)
        heapq.heappush(events, (now + decision.seconds, index, index, now, 1))
    arrival = {index: began for _, _, index, began, _ in events}
    latencies: list[float] = []
    aborts = failed = 0
    order = len(decisions)
    while events:
        commit_at, _, index, began, attempt = heapq.heappop(events)
        decision = decisions[index]
        if any(began < committed.get(doc, -1.0) <= commit_at for doc in decision.reads):
            aborts += 1
            if attempt == RETRY_ATTEMPTS:
                failed += 1
                continue
            pause = rng.uniform(0, min(RETRY_MAX_PAUSE_S, RETRY_PAUSE_S * 2**attempt))
            again = commit_at + pause
            order += 1
            heapq.heappush(events, (again + decision.seconds, order, index, again, attempt + 1))
            continue
        for doc in decision.writes:
            committed[doc] = commit_at
        latencies.append(commit_at - arrival[index])
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return Contention(rate, len(decisions), aborts, failed, quantile(0.5), quantile(0.99))


def sustained_rate(
    decisions: Sequence[Decision],
    hottest_write_share: float,
    rates: Sequence[float] = RATE_LADDER,
    max_abort_rate: float = 0.5,
) -> float:
    """The highest offered rate of kept frames (of ``rates``, or the write bound below) at which
    no decision runs out of attempts, the decisions abort at most ``max_abort_rate`` times each
    on average (retries do not cascade), and the hottest document (written by that share of kept
    frames) stays at Firestore's sustained 1 write per second."""
    bound = DOCUMENT_WRITES_PER_S / max(hottest_write_share, 1e-12)
    best = 0.0
    for rate in rates:
        if rate > bound:
            return bound
        if not holds(decisions, rate, max_abort_rate):
            break
        best = rate
    return best


def holds(decisions: Sequence[Decision], rate: float, max_abort_rate: float = 0.5) -> bool:
    """Whether ``decisions`` offered at ``rate`` per second all commit, aborting at most
    ``max_abort_rate`` times each on average (retries do not cascade)."""
    outcome = simulate(decisions, rate)
    return not outcome.failed and outcome.abort_rate <= max_abort_rate
