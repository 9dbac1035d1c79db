"""Embedded mode: the pipeline on one machine, folder buckets, SQLite, DuckDB, in-process Pub/Sub.

Uploading a file here does what a GCS bucket notification does in the cloud: it publishes an
OBJECT_FINALIZE message with the JSON_API_V1 payload to the raw-objects topic, and the sampler
receives it through the same parsing code as the deployed function.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from framesift.adapters.embedded import FolderBlobStore, InProcessPublisher
from framesift.config import Backend, Settings, Topics
from framesift.delivery import GiveUp, deliver
from framesift.models import PubSubMessage
from framesift.ports import BlobInfo
from framesift.stages.dedup import IMAGE_EXTENSIONS, BatchOutcome, BatchResult, Dedup
from framesift.stages.exporter import Exporter, ExportResult
from framesift.stages.labeler import Labeler, LabelResult
from framesift.stages.sampler import VIDEO_EXTENSIONS, Outcome, Sampler, SampleResult
from framesift.vendors import build_vendor
from framesift.wiring import Adapters, build_adapters


def finalize_message(info: BlobInfo) -> tuple[bytes, dict[str, str]]:
    """The Pub/Sub message GCS sends for a finalized object (payload format JSON_API_V1)."""
    payload = {
        "kind": "storage#object",
        "id": f"{info.bucket}/{info.name}/{info.generation}",
        "name": info.name,
        "bucket": info.bucket,
        "generation": str(info.generation),
        "contentType": info.content_type,
        "size": str(info.size),
        "metadata": dict(info.metadata),
    }
    attributes = {
        "notificationConfig": "embedded",
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": info.bucket,
        "objectId": info.name,
        "objectGeneration": str(info.generation),
    }
    return json.dumps(payload).encode(), attributes


def object_name(settings: Settings, path: Path, collector: str) -> str:
    """The raw bucket's naming standard: ``{prefix}{collector}/{video_id}.ext`` (photos under
    the images prefix)."""
    is_image = path.suffix.lower() in IMAGE_EXTENSIONS
    prefix = settings.images_prefix if is_image else settings.raw_prefix
    return f"{prefix}{collector}/{path.name}"


def iter_inputs(paths: Iterable[Path]) -> Iterator[Path]:
    """The videos and photos named, folders searched recursively."""
    wanted = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in wanted)
        else:
            yield path


@dataclass
class RunSummary:
    results: list[SampleResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    labeling: list[LabelResult] = field(default_factory=list)
    dead_letters: int = 0
    export: ExportResult | None = None

    def counts(self) -> Mapping[str, int]:
        return Counter(result.outcome.value for result in self.results)

    @property
    def frames(self) -> int:
        return sum(result.frames for result in self.results)

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

    def dropped_by_reason(self) -> dict[str, int]:
        reasons: Counter[str] = Counter()
        for batch in self.batches:
            reasons.update(batch.dropped_by_reason)
        return dict(sorted(reasons.items()))


class EmbeddedPipeline:
    def __init__(self, settings: Settings) -> None:
        if settings.backend is not Backend.EMBEDDED:
            raise ValueError("the embedded pipeline needs FRAMESIFT_BACKEND=embedded")
        self.settings = settings
        self.adapters: Adapters = build_adapters(settings)
        if not isinstance(self.adapters.blobs, FolderBlobStore) or not isinstance(
            self.adapters.publisher, InProcessPublisher
        ):
            raise TypeError("embedded wiring must give a folder blob store and in-process Pub/Sub")
        self.blobs: FolderBlobStore = self.adapters.blobs
        self.publisher: InProcessPublisher = self.adapters.publisher
        self.summary = RunSummary()
        sampler = Sampler(self.adapters, settings)
        dedup = Dedup(self.adapters, settings)
        self.labeler = Labeler(self.adapters, settings, build_vendor(settings, self.adapters))

        # Each function gets the topics it subscribes to in the cloud, through the same delivery
        # rules; what a function ignores (the sampler ignores images, dedup ignores videos)
        # stays out of the summary.
        def on_sampler(message: PubSubMessage) -> None:
            result = sampler.handle_message(message)
            if result.outcome is not Outcome.IGNORED:
                self.summary.results.append(result)

        def on_dedup(message: PubSubMessage) -> None:
            result = dedup.handle_message(message)
            if result.outcome is not BatchOutcome.IGNORED:
                self.summary.batches.append(result)

        def on_labeler(message: PubSubMessage) -> None:
            self.summary.labeling.append(self.labeler.handle_message(message))

        self._subscribe("sampler", on_sampler, Topics.RAW_OBJECTS, Topics.VIDEO_SEGMENTS)
        self._subscribe("dedup", on_dedup, Topics.RAW_OBJECTS, Topics.FRAMES_SAMPLED)
        self._subscribe("labeler", on_labeler, Topics.FRAMES_KEPT, give_up=self.labeler.give_up)

    def _subscribe(
        self,
        subscriber: str,
        handle: Callable[[PubSubMessage], None],
        *topics: str,
        give_up: GiveUp | None = None,
    ) -> None:
        for topic in topics:

            def on_message(
                data: bytes, attributes: Mapping[str, str], message_id: str, topic: str = topic
            ) -> None:
                deliver(
                    _message(data, attributes, message_id),
                    handle,
                    subscriber=subscriber,
                    topic=topic,
                    adapters=self.adapters,
                    settings=self.settings,
                    give_up=give_up,
                )

            self.publisher.subscribe(topic, on_message)

    def upload(
        self, path: Path, collector: str, metadata: Mapping[str, str] | None = None
    ) -> BlobInfo:
        """Upload a video, or a photo (to the images prefix), as a capture device would."""
        name = object_name(self.settings, path, collector)
        info = self.blobs.put_file(self.settings.raw_bucket, name, path, metadata or {})
        data, attributes = finalize_message(info)
        self.publisher.publish(Topics.RAW_OBJECTS, data, attributes)
        return info

    def run(
        self,
        paths: Iterable[Path],
        collector: str,
        done: Callable[[Path], None] | None = None,
    ) -> RunSummary:
        """Every stage on each input in turn (``done`` after each), then the export to the
        DuckDB warehouse."""
        for path in iter_inputs(paths):
            self.upload(path, collector)
            self.publisher.drain()
            if done is not None:
                done(path)
        self.summary.dead_letters = len(self.publisher.published[Topics.DEAD_LETTERS])
        self.summary.export = Exporter(self.adapters, self.settings).run()
        return self.summary


def _message(data: bytes, attributes: Mapping[str, str], message_id: str) -> PubSubMessage:
    """The in-process delivery as the Pub/Sub message a function parses."""
    return PubSubMessage.model_validate(
        {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes),
            "messageId": message_id,
        }
    )
