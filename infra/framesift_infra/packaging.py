"""Each function's source archive: its ``main.py``, the shared ``framesift`` package and the
project's pinned dependencies (``scripts/requirements.lock``, made by ``scripts/lock`` from
``pyproject.toml``), so no shared code is copied into the function folders and two deploys of
the same commit install the same versions, the ones the tests ran with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "shared" / "framesift"


@dataclass(frozen=True)
class FunctionSource:
    archive: pulumi.AssetArchive
    files: tuple[str, ...]  # the archive's paths
    digest: str  # of every file's path and bytes: a new object (and deployment) per change


LOCK = REPO_ROOT / "scripts" / "requirements.lock"


def requirements() -> str:
    """The lock's pins, one per line."""
    pins = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    return "".join(f"{pin}\n" for pin in pins)


def function_source(function: str) -> FunctionSource:
    files: dict[str, Path] = {"main.py": REPO_ROOT / "functions" / function / "main.py"}
    for path in sorted(PACKAGE.rglob("*.py")):
        files[f"framesift/{path.relative_to(PACKAGE).as_posix()}"] = path
    reqs = requirements()
    digest = hashlib.sha256(reqs.encode())
    for name, path in files.items():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        name: pulumi.FileAsset(str(path)) for name, path in files.items()
    }
    assets["requirements.txt"] = pulumi.StringAsset(reqs)
    return FunctionSource(
        archive=pulumi.AssetArchive(assets),
        files=(*files, "requirements.txt"),
        digest=digest.hexdigest()[:16],
    )
