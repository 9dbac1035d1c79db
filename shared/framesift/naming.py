"""The raw bucket's naming standard, parser and builder together:
``{prefix}{collector}/{stem}.{ext}``, videos under the raw prefix and photos under the images
prefix; and the deterministic id of an uploaded object's version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
    relative = PurePosixPath(name[len(prefix) :])
    if len(relative.parts) != 2 or any(part in ("", ".", "..") for part in relative.parts):
        return "not named {collector}/{name}.{ext}"
    if relative.suffix.lower() not in extensions:
        return f"extension {relative.suffix!r} is not {kind}'s"
    return UploadName(collector=relative.parts[0], stem=relative.stem)


def upload_name(path: Path, collector: str, raw_prefix: str, images_prefix: str) -> str:
    """The object name ``path`` is uploaded as: a photo under the images prefix, anything else
    under the raw prefix."""
    is_image = path.suffix.lower() in IMAGE_EXTENSIONS
    return f"{images_prefix if is_image else raw_prefix}{collector}/{path.name}"


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
