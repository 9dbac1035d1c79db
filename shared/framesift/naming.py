"""The raw bucket's naming standard, parser and builder together:
``{prefix}{collector}/{stem}.{ext}``, videos under the raw prefix and photos under the images
prefix; and the deterministic id of an uploaded object's version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".3gp"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})


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
    relative_name = name[len(prefix) :]
    relative = PurePosixPath(relative_name)
    if len(relative.parts) != 2 or any(part in ("", ".", "..") for part in relative.parts):
        return "not named {collector}/{name}.{ext}"
    if relative.as_posix() != relative_name:
        # "cam//a.mp4" or "cam/./a.mp4" would parse as "cam/a.mp4", another object's name.
        return f"{relative_name!r} would be read as {relative.as_posix()!r}: refused"
    if relative.suffix.lower() not in extensions:
        return f"extension {relative.suffix!r} is not {kind}'s"
    return UploadName(collector=relative.parts[0], stem=relative.stem)


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
