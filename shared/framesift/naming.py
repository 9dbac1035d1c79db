"""The raw bucket's naming standard, parser and builder together:
``{prefix}{collector}/{stem}.{ext}``, videos under the raw prefix and photos under the images
prefix; the deterministic id of an uploaded object's version; and the one validator of the names
and ids built from an upload's name, shared by ``upload``, embedded mode, the sampler, dedup and
its index.

A collector becomes a folder of the frames bucket and a part of dedup's index document ids, so it
must be a single path segment that Cloud Storage and Firestore both take as it is:
https://cloud.google.com/storage/docs/objects#naming (object names: at most 1024 bytes of UTF-8,
no carriage return or line feed) and
https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields (document ids:
at most 1,500 bytes of UTF-8, no ``/``, not ``.`` or ``..``, not ``__.*__``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".3gp"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
# A DJI drone's telemetry (.SRT) beside its video, uploaded under the raw prefix with it
# (framesift.track).
SIDECAR_EXTENSIONS = frozenset({".srt"})

MAX_OBJECT_NAME_BYTES = 1024  # Cloud Storage's limit on an object name (UTF-8)
MAX_DOCUMENT_ID_BYTES = 1500  # Firestore's limit on a document id (UTF-8)
# A sampled frame's name is the longest built from a collector: it must stay an object name.
_FRAME_NAME_OVERHEAD = len(f"/v_{'0' * 32}/{0:010d}.jpg")
MAX_COLLECTOR_BYTES = MAX_OBJECT_NAME_BYTES - _FRAME_NAME_OVERHEAD
# Control characters: Cloud Storage refuses CR and LF, and no tool shows the others faithfully.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_DOCUMENT_ID = re.compile(r"__.*__")


@dataclass(frozen=True)
class UploadName:
    collector: str
    stem: str


def parse_upload_name(
    name: str, prefix: str, extensions: frozenset[str], kind: str
) -> UploadName | str:
    """``{prefix}{collector}/{stem}.{ext}``, or the reason the name is not one of ``kind``."""
    if not name.startswith(prefix):
        return f"outside the prefix {prefix!r}"
    if reason := object_name_refusal(name):
        return reason
    relative_name = name[len(prefix) :]
    relative = PurePosixPath(relative_name)
    if len(relative.parts) != 2 or any(part in ("", ".", "..") for part in relative.parts):
        return "not named {collector}/{name}.{ext}"
    if relative.as_posix() != relative_name:
        # "cam//a.mp4" or "cam/./a.mp4" would parse as "cam/a.mp4", another object's name.
        return f"{relative_name!r} would be read as {relative.as_posix()!r}: refused"
    if reason := collector_refusal(relative.parts[0]):  # "/a.mp4" parses as ("/", "a.mp4")
        return reason
    if relative.suffix.lower() not in extensions:
        return f"extension {relative.suffix!r} is not {kind}'s"
    return UploadName(collector=relative.parts[0], stem=relative.stem)


def collector_refusal(collector: str) -> str | None:
    """Why ``collector`` cannot name a collector (None: it can): it must be one path segment
    that every object name and document id built from it keeps as it is."""
    if not collector:
        return "the collector is empty"
    if "/" in collector or collector in (".", ".."):
        return f"collector {collector!r} is a path, not one name"
    if _CONTROL.search(collector):
        return f"collector {collector!r} contains a control character"
    return _too_long("collector", collector, MAX_COLLECTOR_BYTES, "a frame's object name")


def object_name_refusal(name: str) -> str | None:
    """Why Cloud Storage would not take ``name`` as it is (None: it would)."""
    if _CONTROL.search(name):
        return f"{name!r} contains a control character"
    return _too_long("the name", name, MAX_OBJECT_NAME_BYTES, "Cloud Storage")


def document_id_refusal(doc_id: str) -> str | None:
    """Why Firestore would not take ``doc_id`` as a document id (None: it would)."""
    if not doc_id or "/" in doc_id or doc_id in (".", ".."):
        return f"document id {doc_id!r} is empty, a path, '.' or '..'"
    if _RESERVED_DOCUMENT_ID.fullmatch(doc_id):
        return f"document id {doc_id!r} is reserved (__.*__)"
    return _too_long("document id", doc_id, MAX_DOCUMENT_ID_BYTES, "Firestore")


def _too_long(what: str, value: str, limit: int, whose: str) -> str | None:
    size = len(value.encode())
    return f"{what} is {size} bytes, over {limit} ({whose}'s limit)" if size > limit else None


def upload_refusal(path: Path, collector: str, raw_prefix: str, images_prefix: str) -> str | None:
    """Why ``path`` uploaded under ``collector`` would be refused, before a byte is sent (None:
    the pipeline would take it: a video, a photo, or a video's telemetry sidecar)."""
    if reason := collector_refusal(collector):
        return reason
    name = upload_name(path, collector, raw_prefix, images_prefix)
    if path.suffix.lower() in SIDECAR_EXTENSIONS:
        parsed = parse_upload_name(name, raw_prefix, SIDECAR_EXTENSIONS, "a sidecar")
        return parsed if isinstance(parsed, str) else None
    return refusal(name, raw_prefix, images_prefix)


def upload_name(path: Path, collector: str, raw_prefix: str, images_prefix: str) -> str:
    """The object name ``path`` is uploaded as: a photo under the images prefix, anything else
    under the raw prefix."""
    is_image = path.suffix.lower() in IMAGE_EXTENSIONS
    return f"{images_prefix if is_image else raw_prefix}{collector}/{path.name}"


def is_photo(name: str, images_prefix: str) -> bool:
    """Whether an upload is dedup's as a photo (under the images prefix) rather than the
    sampler's (anything else is a video, or ignored)."""
    return bool(images_prefix) and name.startswith(images_prefix)


def refusal(name: str, raw_prefix: str, images_prefix: str) -> str | None:
    """Why the pipeline would ignore an upload named ``name`` (None: it would take it): under
    the images prefix it must be a photo's name, elsewhere a video's under the raw prefix."""
    if is_photo(name, images_prefix):
        parsed = parse_upload_name(name, images_prefix, IMAGE_EXTENSIONS, "an image")
    else:
        parsed = parse_upload_name(name, raw_prefix, VIDEO_EXTENSIONS, "a video")
    return parsed if isinstance(parsed, str) else None


def frame_object_name(collector: str, source_doc_id: str, timestamp_ms: int) -> str:
    """Where a sampled frame is written in the frames bucket: under the id of its source
    object's version, so two uploads never write the same JPEG (``cam/a.mp4`` and
    ``cam/a.mov`` share a stem; a re-upload is a new generation)."""
    return f"{collector}/{source_doc_id}/{timestamp_ms:010d}.jpg"


def source_id(kind: str, bucket: str, object_name: str, generation: int) -> str:
    """Deterministic id of an uploaded object's version (``kind``: "v" video, "i" image), so a
    redelivered notification finds the same document and a re-upload is a new one."""
    digest = hashlib.sha256(f"{bucket}/{object_name}#{generation}".encode()).hexdigest()
    return f"{kind}_{digest[:32]}"


def photo_id(bucket: str, object_name: str, generation: int) -> str:
    """A photo's id: its one frame's (dedup files it under it), as a video's is
    :meth:`framesift.documents.VideoRecord.make_id`."""
    return source_id("i", bucket, object_name, generation)


def iter_inputs(paths: Iterable[Path]) -> Iterator[Path]:
    """The videos and photos named, folders searched recursively."""
    wanted = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in wanted)
        else:
            yield path


def served_url(base: str, bucket: str, name: str) -> str:
    """An object's URL under a base that serves ``{bucket}/{object}`` (``image_base_url``:
    ``framesift serve``'s /frames, or a proxy in front of the buckets)."""
    return f"{base.rstrip('/')}/{quote(bucket, safe='')}/{quote(name)}"
