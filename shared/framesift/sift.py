"""Sample and deduplicate one video on this machine, into a local workdir: the sampler and dedup
stages as the embedded pipeline runs them (folder buckets, SQLite, in-process Pub/Sub), and
nothing after them. What an edge agent (:mod:`framesift.edge`) runs before it uploads the kept
frames; anything else that samples where the video is can call it too.

The video is put in the local raw bucket as the version (``generation``) the caller names, so
its ids, and its frames', are the same every time it is sifted: a video sifted already is read
back, not sampled again; one whose sift was interrupted (a crash between the sampler and dedup,
or inside either) is sampled again as a replayed dead letter is, and dedup keeps the decisions
it had made. Dedup decides against the video's own frames and the workdir's dataset index: the
workdir is the window of recent videos it remembers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift.config import Settings
from framesift.documents import (
    VIDEO_FINISHED,
    DedupStatus,
    SegmentRecord,
    VideoRecord,
    VideoStatus,
)
from framesift.embedded import EmbeddedPipeline, RunSummary
from framesift.errors import PermanentError
from framesift.naming import upload_name
from framesift.topology import DEDUP, SAMPLER, Collections, Topics


class SiftIncomplete(PermanentError):
    """The local stages gave up on a video (its messages dead-lettered): nothing to upload."""


@dataclass(frozen=True)
class SiftedVideo:
    """A video as the local sampler and dedup left it."""

    video: dict[str, Any]  # its videos document
    frames: list[dict[str, Any]]  # its frames' documents, each with its decision, in time order

    @property
    def video_doc_id(self) -> str:
        return str(self.video["id"])

    @property
    def kept(self) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["dedup_status"] == DedupStatus.KEPT]

    @property
    def failed(self) -> bool:
        """The video failed (its frames decoded before the error are kept, as the sampler
        keeps them): its frames come from a damaged source."""
        return self.video["status"] == VideoStatus.FAILED


class Sifter:
    """The sampler and dedup over the local workdir ``settings.workdir``. ``between``, when
    given, is called after dedup took each batch of the local sampler's frames, before the next
    (the edge agent's failpoint inside a sift)."""

    def __init__(self, settings: Settings, between: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.pipeline = EmbeddedPipeline(settings, functions=(SAMPLER, DEDUP))
        if between is not None:
            self.pipeline.publisher.subscribe(Topics.FRAMES_SAMPLED, lambda *_: between())

    def video_doc_id(self, path: Path, collector: str, generation: int) -> str:
        settings = self.settings
        name = upload_name(path, collector, settings.raw_prefix, settings.images_prefix)
        return VideoRecord.make_id(settings.raw_bucket, name, generation)

    def sift(self, path: Path, collector: str, generation: int) -> SiftedVideo:
        """Sample and deduplicate the video at ``path`` as version ``generation`` of its
        object, or read back what an earlier call did."""
        video_doc_id = self.video_doc_id(path, collector, generation)
        if (done := self.read(video_doc_id)) is not None:
            return done
        self._replay(video_doc_id)
        pipeline = self.pipeline
        try:
            pipeline.upload(path, collector, generation=generation)  # published to the sampler
            pipeline.publisher.drain()
            if (done := self.read(video_doc_id)) is None:
                letters = [error for _, error in pipeline.publisher.dead_letters]
                why = f"gave up on it: {'; '.join(letters)}" if letters else "left it unfinished"
                raise SiftIncomplete(f"{path}: the local sampler and dedup {why}")
            return done
        finally:
            # What the video's messages and results were is in its documents: kept for the
            # window's life (an agent's --watch), they would hold every message of every video.
            pipeline.publisher.forget()
            pipeline.summary = RunSummary()

    def read(self, video_doc_id: str) -> SiftedVideo | None:
        """The video as sifted, or None while it is not finished and each frame decided."""
        documents = self.pipeline.adapters.documents
        video = documents.get(Collections.VIDEOS, video_doc_id)
        if video is None or video.get("status") not in VIDEO_FINISHED:
            return None
        frames = documents.where(Collections.FRAMES, "video_doc_id", video_doc_id)
        if any(not frame.get("dedup_status") for frame in frames):
            return None
        return SiftedVideo(video, sorted(frames, key=lambda frame: frame["timestamp_ms"]))

    def _replay(self, video_doc_id: str) -> None:
        """Have the sampler take up again a video (and its segments) an earlier sift left
        unfinished, as it does a replayed dead letter's."""
        documents = self.pipeline.adapters.documents
        if documents.get(Collections.VIDEOS, video_doc_id) is None:
            return
        documents.merge(Collections.VIDEOS, video_doc_id, VideoRecord.fields(dead_lettered=True))
        for segment in documents.where(Collections.VIDEO_SEGMENTS, "video_doc_id", video_doc_id):
            documents.merge(
                Collections.VIDEO_SEGMENTS, segment["id"], SegmentRecord.fields(dead_lettered=True)
            )
