"""Buckets as folders: the embedded blob store, with generations and conditional writes as
Cloud Storage has them."""

from __future__ import annotations

import json
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path

from framesift.errors import NotFound, ObjectGone, PreconditionFailed
from framesift.logs import get_logger
from framesift.ports import BlobInfo

log = get_logger(__name__)


class FolderBlobStore:
    """``<root>/<bucket>/<object name>``; content type, metadata and generation in a sidecar."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()

    def _path(self, bucket: str, name: str) -> Path:
        bucket_dir = (self.root / bucket).resolve()
        path = (bucket_dir / name).resolve()
        # Object names are untrusted: "../x" must never leave the bucket's folder.
        if not name or bucket_dir not in path.parents:
            raise ValueError(f"object name {name!r} is not a valid name in bucket {bucket!r}")
        return path

    def _sidecar(self, bucket: str, name: str) -> Path:
        return self._path(f".meta/{bucket}", f"{name}.json")

    def stream_url(
        self,
        bucket: str,
        name: str,
        lifetime: timedelta | None = None,
        generation: int | None = None,
    ) -> str:
        if generation is not None:
            try:
                live: int | None = self.stat(bucket, name).generation
            except NotFound:
                live = None
            if live != generation:
                raise ObjectGone(bucket, name, generation)
        return str(self._path(bucket, name))

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # makes the generation check and the write one step
            if if_generation_match is not None:
                try:
                    current = self.stat(bucket, name).generation
                except NotFound:
                    current = 0
                if current != if_generation_match:
                    raise PreconditionFailed(f"{bucket}/{name} changed")
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half an object
            info = BlobInfo(
                bucket, name, time.time_ns(), len(data), content_type, dict(metadata or {})
            )
            self._write_sidecar(info)
        return info

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
        generation: int | None = None,
        link: bool = False,
    ) -> BlobInfo:
        """Upload a local file by streaming copy (videos can be larger than memory), as version
        ``generation`` (default: a new one). With ``link``, a hard link to the file where the
        filesystem allows one (an edge agent's video is not copied: it is not changed after)."""
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        if not (link and _hard_link(source, tmp)):
            sent = 0
            with source.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent)
        tmp.replace(path)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        info = BlobInfo(
            bucket,
            name,
            time.time_ns() if generation is None else generation,
            path.stat().st_size,
            content_type,
            metadata,
        )
        self._write_sidecar(info)
        return info

    def _write_sidecar(self, info: BlobInfo) -> None:
        sidecar = self._sidecar(info.bucket, info.name)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        sidecar.write_text(
            json.dumps(
                {
                    "generation": info.generation,
                    "content_type": info.content_type,
                    "metadata": dict(info.metadata),
                }
            )
        )

    def get(self, bucket: str, name: str) -> bytes:
        try:
            return self._path(bucket, name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{bucket}/{name}") from exc

    def stat(self, bucket: str, name: str) -> BlobInfo:
        path = self._path(bucket, name)
        try:
            size = path.stat().st_size
            side = json.loads(self._sidecar(bucket, name).read_text())
        except FileNotFoundError as exc:
            raise NotFound(f"{bucket}/{name}") from exc
        return BlobInfo(
            bucket, name, side["generation"], size, side["content_type"], side["metadata"]
        )

    def remove(self, bucket: str, prefix: str) -> int:
        """Delete the objects whose names start with ``prefix`` (an edge agent's local copies
        once uploaded); returns how many."""
        removed = 0
        for info in list(self.list(bucket, prefix)):
            self._path(bucket, info.name).unlink(missing_ok=True)
            self._sidecar(bucket, info.name).unlink(missing_ok=True)
            removed += 1
        return removed

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            return
        for path in sorted(bucket_dir.rglob("*")):
            name = path.relative_to(bucket_dir).as_posix()
            if path.is_file() and not path.name.startswith(".") and name.startswith(prefix):
                yield self.stat(bucket, name)


def _hard_link(source: Path, target: Path) -> bool:
    """Link ``target`` to ``source``; False where the filesystem cannot (another device)."""
    try:
        target.hardlink_to(source)
    except OSError:
        return False
    return True
