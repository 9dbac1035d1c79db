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
    dead_letters: int
    workdir: str


@dataclass(frozen=True)
class LabelingCost:
    cost_usd: float
    saved_usd: float  # by dedup and the selection policy


def labeling_cost(warehouse: Warehouse, sources: Sequence[str]) -> LabelingCost:
    """The labeling cost of the frames of ``sources`` (ids from
    :meth:`~framesift.embedded.EmbeddedPipeline.source_doc_id`, safe to quote) and what dedup
    and selection saved, rounded to four places."""
    if not sources:
        return LabelingCost(0.0, 0.0)
    quoted = ", ".join(f"'{source}'" for source in sources)
    [row] = warehouse.query(
        "SELECT COALESCE(SUM(cost_usd), 0) AS cost_usd,"  # noqa: S608
        " COALESCE(SUM(saved_by_dedup_and_selection_usd), 0) AS saved_usd"
        f" FROM {{dataset}}.labeling_cost_by_source WHERE video_doc_id IN ({quoted})"
    )
    return LabelingCost(round(row["cost_usd"], 4), round(row["saved_usd"], 4))


def run_report(summary: RunSummary, warehouse: Warehouse, workdir: Path) -> RunReport:
    cost = labeling_cost(warehouse, summary.sources)
    return RunReport(
        videos=[
            VideoRow(
                source=r.source,
                video=r.video_doc_id or "",
                outcome=r.outcome.value,
                frames=r.frames,
                reason=r.reason,
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
        estimated_cost_usd=cost.cost_usd,
        saved_usd=cost.saved_usd,
        dead_letters=summary.dead_letters,
        workdir=str(workdir),
    )
