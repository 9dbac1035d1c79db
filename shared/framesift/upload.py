"""What a capture device runs: upload a file to the raw bucket under the naming standard
(``{collector}/{video_id}.ext``), resumably, reporting progress."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from framesift.bootstrap import build_blob_store
from framesift.config import Backend, Settings
from framesift.errors import InvalidName, PermanentError
from framesift.naming import upload_name, upload_refusal
from framesift.ports import BlobInfo, BlobStore
from framesift.track import sidecars_beside


def upload_file(
    settings: Settings, path: Path, collector: str, progress: Callable[[int], None]
) -> str:
    """Upload ``path`` to the raw bucket; returns the object name."""
    if settings.backend is not Backend.GCP:
        raise PermanentError(
            "framesift upload sends to Cloud Storage: set FRAMESIFT_BACKEND=gcp and "
            "FRAMESIFT_PROJECT, or process local files with framesift run"
        )
    reason = upload_refusal(path, collector, settings.raw_prefix, settings.images_prefix)
    if reason is not None:  # refused before a byte is sent, not ignored after
        raise InvalidName(f"{path}: the pipeline would not take it: {reason}")
    name = upload_name(path, collector, settings.raw_prefix, settings.images_prefix)
    build_blob_store(settings).put_file(settings.raw_bucket, name, path, {}, progress)
    return name


# How the video itself is put (the blob store's put_file, or a variant of it: an edge agent's
# as a given generation, linked rather than copied).
PutFile = Callable[[str, str, Path, Mapping[str, str]], BlobInfo]


def put_upload(
    blobs: BlobStore,
    settings: Settings,
    path: Path,
    collector: str,
    metadata: Mapping[str, str] | None = None,
    put_video: PutFile | None = None,
) -> BlobInfo:
    """Put a video, or a photo (to the images prefix), in the raw bucket as a capture device
    would, its telemetry sidecar first (for the sampler to find it); a name the pipeline would
    ignore is refused before anything is written."""
    if reason := upload_refusal(path, collector, settings.raw_prefix, settings.images_prefix):
        raise InvalidName(f"{path}: {reason}")
    name = upload_name(path, collector, settings.raw_prefix, settings.images_prefix)
    for sidecar in sidecars_beside(path):
        as_named = str(PurePosixPath(name).with_suffix(sidecar.suffix))
        blobs.put_file(settings.raw_bucket, as_named, sidecar, {})
    return (put_video or blobs.put_file)(settings.raw_bucket, name, path, metadata or {})
