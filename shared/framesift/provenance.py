"""Where a video and its frames were sampled: by the functions in the cloud (every field None),
or by an edge agent (``framesift edge``), which uploads only the kept frames and says which
edge, from which file (its path, size and SHA-256), with which settings and which framesift.

Recorded on the video's document and on each frame's (:mod:`framesift.documents`), exported as
columns of the warehouse's ``videos`` and ``frames`` tables, and shown by ``framesift report``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

SAMPLED_BY_EDGE = "edge"


class Provenance(BaseModel):
    """The fields of a document sampled at the edge (all None for one the functions sampled)."""

    sampled_by: str | None = None  # "edge"; None: the sampler function, from the raw bucket
    edge_id: str | None = None  # the agent's id (``framesift edge --edge-id``)
    source_path: str | None = None  # the file on the edge's disk
    source_size_bytes: int | None = None
    source_sha256: str | None = None
    # What the edge sampled and deduplicated with: the policy, JPEG quality, dedup thresholds.
    sampling_settings: dict[str, Any] | None = None
    framesift_version: str | None = None


def provenance_line(record: dict[str, Any]) -> str:
    """A document's provenance in a line ('' when the functions sampled it)."""
    if record.get("sampled_by") != SAMPLED_BY_EDGE:
        return ""
    digest = str(record.get("source_sha256") or "")[:12]
    return (
        f"sampled at edge {record.get('edge_id')} from {record.get('source_path')}"
        f" ({record.get('source_size_bytes')} bytes, sha256 {digest}...,"
        f" framesift {record.get('framesift_version')})"
    )
