"""Embedded mode: the pipeline on one machine, folder buckets, SQLite, DuckDB, in-process Pub/Sub.

Uploading a file here does what a GCS bucket notification does in the cloud: it publishes an
OBJECT_FINALIZE message with the JSON_API_V1 payload to the raw-objects topic. Each Pub/Sub
function of :mod:`framesift.topology` is subscribed to its topics with the handler the
deployed function builds (:class:`framesift.bootstrap.Subscriber`): the same delivery rules,
each delivery in its own logging context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from framesift import bootstrap, datasetindex
from framesift.adapters.embedded.folder import FolderBlobStore
from framesift.adapters.embedded.inprocess import InProcessPublisher
from framesift.config import Backend, Settings
from framesift.dedupmigration import ensure_migrated
from framesift.documents import VideoRecord
from framesift.events import PubSubMessage, finalize_message
from framesift.messages import ROUND_MESSAGE, ExportRequest, LabelingRound
from framesift.naming import is_photo, iter_inputs, photo_id, upload_refusal
from framesift.ports import BlobInfo
from framesift.stages.dedup import BatchOutcome, BatchResult
from framesift.stages.exporter import ExportResult
from framesift.stages.labeler import LabelResult
from framesift.stages.sampler import Outcome, SampleResult
from framesift.topology import (
    DEDUP,
    EXPORTER,
    FUNCTIONS,
    LABELER,
    SAMPLER,
    FunctionSpec,
    Topics,
    Trigger,
)
from framesift.upload import put_upload


@dataclass(frozen=True)
class RefusedInput:
    """An input the run did not upload: the pipeline would ignore its name."""

    path: Path
    reason: str


@dataclass
class RunSummary:
    results: list[SampleResult] = field(default_factory=list)
    refused: list[RefusedInput] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    labeling: list[LabelResult] = field(default_factory=list)
    dead_letters: int = 0
    export: ExportResult | None = None
    # The ids the run's uploads' frames are filed under (their video_doc_id), for the warehouse.
    sources: list[str] = field(default_factory=list)

    @property
    def videos(self) -> list[SampleResult]:
        """One result per video, its last: a long video's segments report along the way."""
        return [result for result in self.results if result.outcome is not Outcome.SEGMENTED]

    @property
    def photos(self) -> list[BatchResult]:
        """One decision per photo (dedup's other batches are a video's frames)."""
        return [batch for batch in self.batches if batch.source]

    def counts(self) -> Mapping[str, int]:
        return Counter(result.outcome.value for result in self.videos)

    @property
    def frames(self) -> int:
        """Frames sampled from the videos (each decided once, as the photos are)."""
        return sum(result.frames for result in self.videos)

    @property
    def kept(self) -> int:
        return sum(batch.kept for batch in self.batches)

    @property
    def dropped(self) -> int:
        return sum(batch.dropped for batch in self.batches)

    @property
    def tasks(self) -> int:
        return sum(result.requested for result in self.labeling)

    @property
    def skipped(self) -> int:
        return sum(result.skipped for result in self.labeling)

    def record(self, function: str, result: Any) -> None:
        """Keep what a function's handler returned; what a function ignores (the sampler
        ignores images, dedup ignores videos) and a sidecar's placing stay out of the summary."""
        if function == SAMPLER.name and result.outcome not in (Outcome.IGNORED, Outcome.PLACED):
            self.results.append(result)
        elif function == DEDUP.name and result.outcome is not BatchOutcome.IGNORED:
            self.batches.append(result)
        elif function == LABELER.name:
            self.labeling.append(result)
        elif function == EXPORTER.name:
            self.export = result

    def dropped_by_reason(self) -> dict[str, int]:
        reasons: Counter[str] = Counter()
        for batch in self.batches:
            reasons.update(batch.dropped_by_reason)
        return dict(sorted(reasons.items()))


class EmbeddedPipeline:
    """The bundle's Pub/Sub functions on one machine; ``functions`` subscribes only these (an
    edge agent runs the sampler and dedup alone: :mod:`framesift.sift`)."""

    def __init__(self, settings: Settings, functions: Iterable[FunctionSpec] = FUNCTIONS) -> None:
        if settings.backend is not Backend.EMBEDDED:
            raise ValueError("the embedded pipeline needs FRAMESIFT_BACKEND=embedded")
        self.settings = settings
        self.adapters: bootstrap.Adapters = bootstrap.build_adapters(settings)
        if not isinstance(self.adapters.blobs, FolderBlobStore) or not isinstance(
            self.adapters.publisher, InProcessPublisher
        ):
            raise TypeError("embedded wiring must give a folder blob store and in-process Pub/Sub")
        self.blobs: FolderBlobStore = self.adapters.blobs
        self.publisher: InProcessPublisher = self.adapters.publisher
        self.summary = RunSummary()
        # A workdir an earlier release wrote has its dedup index migrated before any decision
        # (docs/dedup-index.md); the edge's sifter and deployment are embedded pipelines too.
        ensure_migrated(self.adapters.documents, datasetindex.shape(settings))
        for spec in functions:
            if spec.trigger is Trigger.PUBSUB:
                self._subscribe(spec.name, spec.subscribes)

    def _subscribe(self, function: str, topics: Iterable[str]) -> None:
        subscriber = bootstrap.Subscriber(
            function,
            self.adapters,
            self.settings,
            on_result=lambda result: self.summary.record(function, result),
        )
        for topic in topics:

            def on_message(
                data: bytes, attributes: Mapping[str, str], message_id: str, topic: str = topic
            ) -> None:
                subscriber.receive(lambda: PubSubMessage.of(data, attributes, message_id), topic)

            self.publisher.subscribe(topic, on_message)

    def upload(
        self,
        path: Path,
        collector: str,
        metadata: Mapping[str, str] | None = None,
        generation: int | None = None,
    ) -> BlobInfo:
        """Upload a video, or a photo (to the images prefix), as a capture device would; a name
        the pipeline would ignore is refused before anything is written. With ``generation``,
        as that version of the object, linked rather than copied where it can be (an edge
        agent's video: the same file is the same version after a restart)."""
        put_video = (
            None
            if generation is None
            else partial(self.blobs.put_file, generation=generation, link=True)
        )
        info = put_upload(self.blobs, self.settings, path, collector, metadata, put_video)
        data, attributes = finalize_message(info)
        self.publisher.publish(Topics.RAW_OBJECTS, data, attributes)
        return info

    def refusal(self, path: Path, collector: str) -> str | None:
        """Why :meth:`upload` would refuse ``path`` under ``collector`` (None: it would not)."""
        settings = self.settings
        return upload_refusal(path, collector, settings.raw_prefix, settings.images_prefix)

    def source_doc_id(self, upload: BlobInfo) -> str:
        """The id the sampler files a video's frames under, or dedup a photo's one frame."""
        if is_photo(upload.name, self.settings.images_prefix):
            return photo_id(upload.bucket, upload.name, upload.generation)
        return VideoRecord.make_id(upload.bucket, upload.name, upload.generation)

    def run(
        self,
        paths: Iterable[Path],
        collector: str,
        done: Callable[[Path], None] | None = None,
    ) -> RunSummary:
        """Every stage on each input in turn (``done`` after each), then, with a labeling
        budget, the run's labeling round, and the export to the DuckDB warehouse, each requested
        on its topic as Cloud Scheduler does."""
        started = datetime.now(UTC)
        for path in iter_inputs(paths):
            if reason := self.refusal(path, collector):  # one never blocks the others
                self.summary.refused.append(RefusedInput(path, reason))
            else:
                self.summary.sources.append(self.source_doc_id(self.upload(path, collector)))
                self.publisher.drain()
            if done is not None:
                done(path)
        if self.settings.labeling_budget:
            # The run is the budget's period: its one round, once every frame is queued.
            round_id = f"run-{started:%Y%m%dT%H%M%S.%fZ}"
            self.publisher.publish(
                Topics.LABELING_ROUNDS,
                LabelingRound(round=round_id).model_dump_json().encode(),
                {ROUND_MESSAGE: round_id},
            )
            self.publisher.drain()
        self.publisher.publish(Topics.EXPORT_REQUESTS, ExportRequest().model_dump_json().encode())
        self.publisher.drain()
        self.summary.dead_letters = len(self.publisher.published[Topics.DEAD_LETTERS])
        return self.summary
