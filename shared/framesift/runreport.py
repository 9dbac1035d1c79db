"""What ``framesift run`` reports of an embedded run: what each video and photo became, the
frames kept and dropped, the labeling tasks, and what labeling them costs and what dedup and the
selection policy saved. The money is read from the warehouse's ``labeling_cost_by_source`` view
for the run's uploads, so the price is applied in one place (``warehouse/sql/labeling_cost.sql``);
the run exports to the warehouse at its end, before this reads it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from framesift.embedded import RunSummary
from framesift.ports import Warehouse


class VideoRow(BaseModel):
    source: str
    video: str
    outcome: str
    frames: int
    reason: str
    index_reads: int  # documents of dedup's indexes its frames' decisions read
    index_writes: int  # and wrote


class RefusedRow(BaseModel):
    input: str
    reason: str


class PhotoRow(BaseModel):
    source: str
    decision: str  # kept, or the reasons it was dropped


class RunReport(BaseModel):
    """The run's summary, as ``--json`` prints it and the summary table shows it."""

    videos: list[VideoRow]
    photos: list[PhotoRow]
    refused: list[RefusedRow]  # inputs not uploaded: the pipeline would ignore their names
    frames_sampled: int
    kept: int
    dropped: dict[str, int]
    labeling_tasks: int
    skipped_by_policy: int
    estimated_cost_usd: float
    saved_usd: float
    # Dedup's index documents read and written for the run's sources, and the hours of video
    # they came from (photos have none).
    dedup_index_reads: int
    dedup_index_writes: int
    video_hours: float
    dead_letters: int
    workdir: str

    def per_video_hour(self, count: int) -> float | None:
        return count / self.video_hours if self.video_hours else None


@dataclass(frozen=True)
class SourceCost:
    """What one uploaded video or photo cost: its labeling, what dedup and selection saved, the
    index documents its dedup decisions read and wrote, and its length (None for a photo)."""

    cost_usd: float
    saved_usd: float
    index_reads: int
    index_writes: int
    duration_s: float | None


def source_costs(warehouse: Warehouse, sources: Sequence[str]) -> dict[str, SourceCost]:
    """The costs of ``sources`` (ids from :meth:`~framesift.embedded.EmbeddedPipeline.
    source_doc_id`, safe to quote), from the warehouse's ``labeling_cost_by_source`` view."""
    if not sources:
        return {}
    quoted = ", ".join(f"'{source}'" for source in sources)
    rows = warehouse.query(
        "SELECT c.video_doc_id, c.cost_usd, c.saved_by_dedup_and_selection_usd AS saved_usd,"  # noqa: S608
        " c.dedup_index_reads, c.dedup_index_writes, v.duration_s"
        " FROM {dataset}.labeling_cost_by_source AS c"
        " LEFT JOIN {dataset}.videos AS v ON v.id = c.video_doc_id"
        f" WHERE c.video_doc_id IN ({quoted})"
    )
    return {
        row["video_doc_id"]: SourceCost(
            row["cost_usd"],
            row["saved_usd"],
            row["dedup_index_reads"],
            row["dedup_index_writes"],
            row["duration_s"],
        )
        for row in rows
    }


def run_report(summary: RunSummary, warehouse: Warehouse, workdir: Path) -> RunReport:
    costs = source_costs(warehouse, summary.sources)
    none = SourceCost(0.0, 0.0, 0, 0, None)
    return RunReport(
        videos=[
            VideoRow(
                source=r.source,
                video=r.video_doc_id or "",
                outcome=r.outcome.value,
                frames=r.frames,
                reason=r.reason,
                index_reads=costs.get(r.video_doc_id or "", none).index_reads,
                index_writes=costs.get(r.video_doc_id or "", none).index_writes,
            )
            for r in summary.videos
        ],
        photos=[
            PhotoRow(source=p.source, decision="kept" if p.kept else ", ".join(p.dropped_by_reason))
            for p in summary.photos
        ],
        refused=[RefusedRow(input=str(r.path), reason=r.reason) for r in summary.refused],
        frames_sampled=summary.frames,
        kept=summary.kept,
        dropped=summary.dropped_by_reason(),
        labeling_tasks=summary.tasks,
        skipped_by_policy=summary.skipped,
        estimated_cost_usd=round(sum(c.cost_usd for c in costs.values()), 4),
        saved_usd=round(sum(c.saved_usd for c in costs.values()), 4),
        dedup_index_reads=sum(c.index_reads for c in costs.values()),
        dedup_index_writes=sum(c.index_writes for c in costs.values()),
        video_hours=sum(c.duration_s or 0.0 for c in costs.values()) / 3600,
        dead_letters=summary.dead_letters,
        workdir=str(workdir),
    )
