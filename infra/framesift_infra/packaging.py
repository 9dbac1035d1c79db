"""Each function's source archive: its ``main.py``, the modules of ``framesift`` it loads and the
pinned versions (``scripts/requirements.lock``, made by ``scripts/lock``) of the distributions
those modules come from, with their own dependencies: a function ships and installs only what
it runs, and two deploys of the same commit install the same versions, the ones the tests ran
with. What a function loads is measured, not listed by hand: its entry point is imported and its
handler built in a fresh interpreter, configured as deployed (``framesift_dev.loaded``)."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pulumi
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from framesift.config import Vendor
from framesift.topology import LABELER, function
from framesift_dev.loaded import DEPLOYED_ENV, loaded, probe_model

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "shared" / "framesift"
LOCK = REPO_ROOT / "scripts" / "requirements.lock"


@dataclass(frozen=True)
class FunctionSource:
    archive: pulumi.AssetArchive
    files: tuple[str, ...]  # the archive's paths
    requirements: str  # its requirements.txt
    digest: str  # of every file's path and bytes: a new object (and deployment) per change


def lock() -> dict[str, str]:
    """The lock's pins: distribution name (canonical) -> version."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def requirements(distributions: frozenset[str]) -> str:
    """Pins, from the lock, of the project's own dependencies among ``distributions`` and of
    everything those require. A library a function imports only because it is installed (as
    google-cloud-bigquery imports pandas when it can) is not required, and is left out."""
    pins = lock()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    direct = {canonicalize_name(Requirement(d).name): d for d in project["dependencies"]}
    loaded_direct = [direct[n] for n in map(canonicalize_name, distributions) if n in direct]
    needed: set[str] = set()
    todo = [Requirement(declared) for declared in loaded_direct]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        try:
            requires = distribution(requirement.name).requires or []
        except PackageNotFoundError:
            continue  # not installed here: a dependency for another platform or Python
        needed.add(name)
        for sub in map(Requirement, requires):
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    missing = needed - pins.keys()
    if missing:
        raise ValueError(f"not in scripts/requirements.lock (run scripts/lock): {sorted(missing)}")
    return "".join(f"{name}=={pins[name]}\n" for name in sorted(needed))


def package_data(modules: Iterable[Path]) -> list[Path]:
    """The data files (pyproject's ``[tool.setuptools.package-data]``, e.g. the warehouse's
    view SQL) of the sub-packages ``modules`` come from: a module reading a file beside it
    finds it deployed too."""
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {path.parent for path in modules} - {PACKAGE}
    return sorted(
        path
        for pattern in declared["package-data"]["framesift"]
        for path in PACKAGE.glob(pattern)
        if packages & set(path.parents)
    )


def function_source(name: str, vendor: str, model: bool = False) -> FunctionSource:
    """The archive of function ``name`` deployed with labeling vendor ``vendor`` and, if
    ``model``, a pre-labeling model (only the labeler's archive depends on either: with a model
    it ships the ONNX adapter and installs onnxruntime)."""
    if name != LABELER.name:
        return _source(name, Vendor.MANIFEST.value, False)
    return _source(name, vendor, model)


@cache
def _source(name: str, vendor: str, model: bool) -> FunctionSource:
    env = {**DEPLOYED_ENV, "FRAMESIFT_LABELING_VENDOR": vendor}
    if model:  # probed loading a model, as the labeler does on its first batch
        env["FRAMESIFT_MODEL_URI"] = str(probe_model())
    found = loaded(function(name), env)
    files: dict[str, Path] = {"main.py": REPO_ROOT / "functions" / name / "main.py"}
    for path in [*sorted(found.framesift_files), *package_data(found.framesift_files)]:
        files[f"framesift/{path.relative_to(PACKAGE).as_posix()}"] = path
    reqs = requirements(found.distributions)
    digest = hashlib.sha256(reqs.encode())
    for archived, path in files.items():
        digest.update(archived.encode())
        digest.update(path.read_bytes())
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        archived: pulumi.FileAsset(str(path)) for archived, path in files.items()
    }
    assets["requirements.txt"] = pulumi.StringAsset(reqs)
    return FunctionSource(
        archive=pulumi.AssetArchive(assets),
        files=(*files, "requirements.txt"),
        requirements=reqs,
        digest=digest.hexdigest()[:16],
    )
