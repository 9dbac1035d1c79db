"""A split put off when a commit would pass its write limit: the leaf goes over the cap for a
while, the lookup stays exact, and the next hash splits it."""

from __future__ import annotations

from typing import Any

import pytest

from framesift import dedupindex as di

Docs = dict[str, dict[str, Any] | None]
G = di.Geometry(threshold=10, cap=1, min_depth=1)
FIRST = "0123456789abcdef"
SECOND = "0123456789abcde0"  # 4 bits from FIRST, in the last band: same leaves in most chains
THIRD = "0123456789abcd0f"


def _read(docs: Docs, phash: str) -> di.Plan:
    """The lookup's plan, its documents read (absent ones as None) into ``docs``."""
    while missing := di.plan("s", phash, docs, G).missing:
        docs.update(dict.fromkeys(missing))
    return di.plan("s", phash, docs, G)


def _add(docs: Docs, phash: str, max_writes: int | None = None) -> dict[str, dict[str, Any]]:
    _read(docs, phash)
    writes = di.added("s", phash, docs, G, max_writes=max_writes)
    docs.update(writes)
    return writes


def _nearest(docs: Docs, phash: str) -> str | None:
    found = di.nearest(phash, docs, _read(docs, phash), G)
    return found.phash if found else None


def test_a_split_that_would_pass_the_limit_waits_for_the_next_hash():
    docs: Docs = {}
    _add(docs, FIRST)
    _read(docs, SECOND)
    unlimited = di.added("s", SECOND, dict(docs), G)
    assert len(unlimited) > G.chains  # splits, with no limit

    writes = _add(docs, SECOND, max_writes=G.chains)

    assert len(writes) == G.chains and not any(w["split"] for w in writes.values())
    assert max(di.entries([w]) for w in writes.values()) == 2  # over the cap of 1, for now
    assert _nearest(docs, SECOND) == SECOND and _nearest(docs, FIRST) == FIRST
    later = _add(docs, THIRD)
    assert any(w["split"] for w in later.values())
    for phash in (FIRST, SECOND, THIRD):
        assert _nearest(docs, phash) == phash


def test_a_limit_below_one_leaf_per_chain_is_refused():
    with pytest.raises(ValueError, match="at least 11"):
        di.added("s", FIRST, {}, G, max_writes=G.chains - 1)
