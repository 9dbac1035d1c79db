"""A video's telemetry sidecar (a DJI ``.SRT`` beside it, :mod:`framesift.track`) in the raw
bucket: found once when the video is planned and named in its segment tasks, read by each
segment, and applied to the frames already sampled when it is uploaded after its video.

Storage calls: finding it is one ``stat`` per name it may have (``storage.objects.get``), once
per video, not per segment; reading it is one ``get`` per segment (``storage.objects.get``). The
sampler's ``roles/storage.objectViewer`` on the raw bucket grants both (and
``storage.objects.list``, not used).

A sidecar's own OBJECT_FINALIZE re-places the frames of the videos beside it from the sidecar
there now: an idempotent update of each frame's capture fields (the same sidecar gives the same
values, and a frame already right is not written). A video still being sampled is retried
(:class:`~framesift.errors.StillSampling`: its segments that read no sidecar may still be writing
frames); a sidecar before its video is passed over (the sampler finds it when it plans the
video). No frame is created or sent on to dedup again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from framesift.capture import CaptureFields
from framesift.documents import VIDEO_FINISHED, FrameRecord
from framesift.errors import NotFound, StillSampling
from framesift.events import GcsObject
from framesift.logs import get_logger
from framesift.naming import SIDECAR_EXTENSIONS, parse_upload_name
from framesift.ports import BlobStore, DocumentStore
from framesift.topology import Collections
from framesift.track import (
    MAX_SIDECAR_BYTES,
    Track,
    frame_capture,
    parse_dji_srt,
    sidecar_names,
)

log = get_logger(__name__)


def find_sidecar(blobs: BlobStore, bucket: str, video_name: str) -> str | None:
    """The object name of the video's sidecar beside it (None: it has none, or one over
    ``MAX_SIDECAR_BYTES``, which is logged)."""
    for name in sidecar_names(video_name):
        try:
            size = blobs.stat(bucket, name).size
        except NotFound:
            continue
        if size > MAX_SIDECAR_BYTES:
            log.warning("sidecar over %d bytes ignored: %s", MAX_SIDECAR_BYTES, name)
            return None
        return name
    return None


def read_sidecar(blobs: BlobStore, bucket: str, name: str) -> Track | None:
    """The track in the sidecar ``name`` (None: it is gone since it was found)."""
    try:
        return parse_dji_srt(PurePosixPath(name).name, blobs.get(bucket, name))
    except NotFound:
        return None


@dataclass(frozen=True)
class Placed:
    videos: int
    frames: int  # frames whose capture fields changed


def _capture(record: dict[str, Any]) -> CaptureFields:
    """The capture fields a stored video or frame record holds."""
    fields = CaptureFields.model_fields
    return CaptureFields.model_validate(
        {key: value for key in fields if (value := record.get(key)) is not None}
    )


class SidecarPlacer:
    def __init__(self, blobs: BlobStore, documents: DocumentStore, raw_prefix: str) -> None:
        self._blobs = blobs
        self._documents = documents
        self._raw_prefix = raw_prefix

    def apply(self, obj: GcsObject) -> Placed:
        """Place the frames of the videos beside the sidecar ``obj`` on the sidecar there now.
        Raises :class:`StillSampling` while one of them is being sampled."""
        parsed = parse_upload_name(obj.name, self._raw_prefix, SIDECAR_EXTENSIONS, "a sidecar")
        if isinstance(parsed, str):
            return Placed(0, 0)  # beside no video the sampler would take
        stem = PurePosixPath(obj.name).with_suffix("")
        videos = [
            video
            for video in self._documents.where(Collections.VIDEOS, "video_id", parsed.stem)
            if video.get("bucket") == obj.bucket
            and PurePosixPath(str(video.get("object_name"))).with_suffix("") == stem
        ]
        busy = [
            video["object_name"] for video in videos if video.get("status") not in VIDEO_FINISHED
        ]
        if busy:
            raise StillSampling(f"{obj.name}: applied once {busy[0]} is sampled")
        frames = 0
        for video in videos:
            frames += self._place(video)
        return Placed(len(videos), frames)

    def _place(self, video: dict[str, Any]) -> int:
        """Re-place a sampled video's frames on its sidecar; the frames changed."""
        name = find_sidecar(self._blobs, video["bucket"], video["object_name"])
        track = read_sidecar(self._blobs, video["bucket"], name) if name else None
        if track is None:
            return 0  # gone meanwhile: nothing to apply (its frames keep what they have)
        capture = _capture(video)
        changed = 0
        for frame in self._documents.where(Collections.FRAMES, "video_doc_id", video["id"]):
            placed = frame_capture(capture, track, int(frame["timestamp_ms"]))
            if placed != _capture(frame):
                self._documents.merge(
                    Collections.FRAMES, frame["id"], FrameRecord.fields(**placed.model_dump())
                )
                changed += 1
        log.info(
            "frames placed on a sidecar uploaded after its video",
            extra={"fields": {"video_doc_id": video["id"], "sidecar": name, "frames": changed}},
        )
        return changed
