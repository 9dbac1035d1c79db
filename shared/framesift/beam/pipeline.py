"""The Beam pipeline: the bundle's topology with PCollections for the topics between its
Pub/Sub functions.

    listing (bucket notifications) -> sampler -> video-segments -> sampler (per segment)
                                          \\                              /
                                           frames-sampled, by video -> dedup -> frames-kept
                                                                                  -> labeler

- **Listing**: the objects of a prefix of the raw bucket, or local files put there first (as
  ``framesift run`` and ``framesift upload`` do), each as the OBJECT_FINALIZE notification the
  bucket sends.
- **Sampler**: the sampler function on each notification: it probes and plans the video, samples
  a short one at once and sends a long one on as segments, which are spread over the workers
  (a reshuffle) and sampled by the sampler function again, one segment per element.
- **Dedup**: every frame batch of a video (and a photo's notification) grouped by video and
  decided by the dedup function in the order the functions path publishes them (segment,
  then batch), so a video's decisions equal the functions path's. Videos are decided in
  parallel, as the deployed functions decide them: which of two near-identical frames of two
  different videos is kept depends on which is decided first there too, and both paths decide
  through the same transactional index in the same document store (Firestore deployed), so
  the dataset-wide guarantee (never both kept, every frame decided once) holds whichever runs
  first, also with the functions running at the same time.
- **Labeler**: the labeler function on the kept frames. With ``labeling="deployment"`` the kept
  frames go to the deployment's ``frames-kept`` topic instead, where the deployed labeler (which
  holds the vendor's secrets) makes the tasks: the workers then need no secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult

from framesift import datasetindex
from framesift.beam.steps import (
    METRICS,
    FunctionStep,
    Message,
    OrderedFunctionStep,
    WorkerSettings,
    source_of,
)
from framesift.bootstrap import build_adapters, build_blob_store
from framesift.config import Backend, Settings
from framesift.dedupmigration import ensure_migrated
from framesift.errors import InvalidName
from framesift.events import finalize_message
from framesift.logs import get_logger
from framesift.naming import iter_inputs
from framesift.ports import BlobInfo
from framesift.topology import DEDUP, LABELER, SAMPLER, Topics
from framesift.upload import put_upload

log = get_logger(__name__)


class Labeling(StrEnum):
    PIPELINE = "pipeline"  # the labeler runs as the pipeline's last step
    DEPLOYMENT = "deployment"  # the kept frames go to the deployment's frames-kept topic


@dataclass(frozen=True)
class Listing:
    """The videos a run takes, as their bucket notifications, and the local files it refused."""

    notifications: list[Message]
    refused: list[tuple[Path, str]] = field(default_factory=list)


def _notification(info: BlobInfo) -> Message:
    data, attributes = finalize_message(info)
    return Message(Topics.RAW_OBJECTS, data, attributes)


def list_prefix(settings: Settings, prefix: str) -> Listing:
    """Every object under ``prefix`` in the raw bucket (a sidecar too: the sampler ignores it
    as the function does, reading it with its video)."""
    blobs = build_blob_store(settings)
    infos = sorted(blobs.list(settings.raw_bucket, prefix), key=lambda info: info.name)
    return Listing([_notification(info) for info in infos])


def upload_paths(settings: Settings, paths: Iterable[Path], collector: str) -> Listing:
    """Local videos and photos (folders searched) put in the raw bucket under ``collector``, as
    a capture device would; one whose name the pipeline would ignore is refused, not sent."""
    blobs = build_blob_store(settings)
    notifications, refused = [], []
    for path in iter_inputs(paths):
        try:
            notifications.append(_notification(put_upload(blobs, settings, path, collector)))
        except InvalidName as exc:
            log.warning("input refused: %s", exc)
            refused.append((path, str(exc)))
    return Listing(notifications, refused)


@dataclass(frozen=True)
class Steps:
    """What every step is built with: the settings it carries to its workers and the topics
    the pipeline carries between steps (the rest go to the deployment)."""

    worker: WorkerSettings
    labeling: Labeling

    @classmethod
    def of(cls, settings: Settings, labeling: Labeling) -> Steps:
        return cls(WorkerSettings.of(settings), labeling)

    @property
    def carried(self) -> frozenset[str]:
        kept = {Topics.FRAMES_KEPT} if self.labeling is Labeling.PIPELINE else set()
        return frozenset({Topics.VIDEO_SEGMENTS, Topics.FRAMES_SAMPLED, *kept})

    def function(self, name: str) -> FunctionStep:
        return FunctionStep(name, self.worker, self.carried)


def build(
    pipeline: beam.Pipeline,
    settings: Settings,
    listing: Listing,
    labeling: Labeling = Labeling.PIPELINE,
) -> None:
    """Add the steps to ``pipeline``, for the videos of ``listing``."""
    steps = Steps.of(settings, labeling)
    raw = (
        pipeline
        | "Listing" >> beam.Create(listing.notifications)
        | "SpreadVideos" >> beam.Reshuffle()
    )
    videos = raw | "Sample" >> beam.ParDo(steps.function(SAMPLER.name)).with_outputs(
        Topics.VIDEO_SEGMENTS, Topics.FRAMES_SAMPLED
    )
    segments = (
        videos[Topics.VIDEO_SEGMENTS]
        | "SpreadSegments" >> beam.Reshuffle()
        | "SampleSegments"
        >> beam.ParDo(steps.function(SAMPLER.name)).with_outputs(Topics.FRAMES_SAMPLED)
    )
    # Photos come to dedup as their notification, as to the function (it ignores videos').
    sampled = (videos[Topics.FRAMES_SAMPLED], segments[Topics.FRAMES_SAMPLED], raw) | (
        "FramesSampled" >> beam.Flatten()
    )
    decide_and_label(sampled, steps)


def decide_and_label(sampled: beam.PCollection, steps: Steps) -> None:
    """Dedup on the frame batches (and photos' notifications) of ``sampled``, each video's in
    the functions path's order, then the labeler on the kept frames (or the deployment's)."""
    kept = (
        sampled
        | "BySource" >> beam.Map(lambda message: (source_of(message), message))
        | "GroupBySource" >> beam.GroupByKey()
        | "Dedup"
        >> beam.ParDo(OrderedFunctionStep(DEDUP.name, steps.worker, steps.carried)).with_outputs(
            Topics.FRAMES_KEPT
        )
    )
    if steps.labeling is Labeling.PIPELINE:
        _ = kept[Topics.FRAMES_KEPT] | "Label" >> beam.ParDo(steps.function(LABELER.name))


# The counters a run reports, in the order the summary lists them.
SUMMARY = (
    "videos_sampled",
    "videos_failed",
    "sampler_duplicate",  # a video or segment done already (a rerun, the functions)
    "sampler_ignored",
    "frames_sampled",
    "frames_kept",
    "frames_dropped",
    "labeling_requested",
    "given_up",
)


def run(
    settings: Settings,
    listing: Listing,
    options: PipelineOptions,
    labeling: Labeling = Labeling.PIPELINE,
) -> dict[str, int]:
    """Run the pipeline on ``listing`` until it is done; returns its counters. Into an
    embedded workdir, its dedup index is migrated first, as an embedded run does (a deployment
    runs ``framesift migrate-dedup-index``)."""
    if settings.backend is Backend.EMBEDDED:
        ensure_migrated(build_adapters(settings).documents, datasetindex.shape(settings))
    pipeline = beam.Pipeline(options=options)
    build(pipeline, settings, listing, labeling)
    result = pipeline.run()
    result.wait_until_finish()
    return counters(result)


def counters(result: PipelineResult) -> dict[str, int]:
    """The run's counters, summed over its workers (committed values: a retried bundle's
    attempts are not counted twice)."""
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS))
    totals = dict.fromkeys(SUMMARY, 0)
    for counter in query["counters"]:
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    return totals
