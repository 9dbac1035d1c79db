"""What a function loads: its entry point imported, its handler and every client built, in a
fresh interpreter, as a new instance does by its first events.

The packaging ships exactly these modules of ``framesift`` and the distributions they come from
(with their own dependencies), and the deploy test layer guards that no function loads what it
does not run (a vendor's SDK, the dev stack, the command line).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from framesift.config import Settings
from framesift.topology import FunctionSpec

# Where the probe's emulator variables point: the clients are built, never used.
_NOWHERE = "127.0.0.1:9"
DEPLOYED_ENV = {
    "FRAMESIFT_BACKEND": "gcp",
    "GOOGLE_CLOUD_PROJECT": "framesift-probe",
    "FRAMESIFT_PROJECT": "framesift-probe",
    "STORAGE_EMULATOR_HOST": f"http://{_NOWHERE}",
    "PUBSUB_EMULATOR_HOST": _NOWHERE,
    "FIRESTORE_EMULATOR_HOST": _NOWHERE,
    "FRAMESIFT_BIGQUERY_ENDPOINT": f"http://{_NOWHERE}",
    # Made-up values, so each vendor's client can be built.
    "FRAMESIFT_SCALE_API_KEY": "probe",
    "FRAMESIFT_LABELSTUDIO_API_KEY": "probe",
}

# What a new instance does before its first event: argv = main.py, trigger, function name.
START = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from framesift import runtime
built = runtime.callbacks() if sys.argv[2] == "http" else runtime.subscriber(sys.argv[3])
"""

_PROBE = (
    START
    + """
import importlib.metadata, json
# The clients are built when a stage first uses them: build every one, as some event will.
wired = runtime.adapters()
wired.blobs, wired.publisher, wired.documents, wired.warehouse
# And what the handler builds on its first use of it (the labeler's model, on its first batch).
from framesift.ports import Lazy
todo, seen = [built], set()
while todo:
    part = todo.pop()
    part = getattr(part, "__self__", part)  # a handler's bound method: the stage behind it
    if id(part) in seen or not type(part).__module__.startswith("framesift"):
        continue
    seen.add(id(part))
    if isinstance(part, Lazy):
        todo.append(part.get())
    todo.extend(getattr(part, "__dict__", {}).values())
owners = {}
for dist in importlib.metadata.distributions():
    for file in dist.files or ():
        if file.suffix in (".py", ".so"):
            owners[str(dist.locate_file(file))] = dist.metadata["Name"]
loaded = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
print(json.dumps({
    "modules": sorted(loaded),
    "framesift": sorted(
        file for name, file in loaded.items()
        if file and (name == "framesift" or name.startswith("framesift."))
    ),
    "distributions": sorted({owners[file] for file in loaded.values() if file in owners}),
}))
"""
)


@dataclass(frozen=True)
class Loaded:
    modules: frozenset[str]  # every module's name
    framesift_files: tuple[Path, ...]  # the files of framesift's modules
    distributions: frozenset[str]  # the installed distributions the modules come from


_REPO = Path(__file__).resolve().parents[2]
# Probes of the repository's own code, by a digest of everything their answer depends on: the
# packaging and the cold-start tests ask the same questions, and a commit is probed once.
CACHE = _REPO / ".framesift" / "cache" / "loaded"


def probe_model() -> Path:
    """The model a probe configured with one loads (``FRAMESIFT_MODEL_URI``): deployed, the
    labeler reads the stack's model from its bucket; this small one makes the probe import and
    run what that does (the ONNX adapter, onnxruntime), with no bucket."""
    path = CACHE / "probe-model.onnx"
    if not path.exists():
        import numpy as np

        from framesift_dev.onnxmodels import fixed_yolo

        # Detecting the default labeling classes, which the probe's labeler is configured with.
        classes = Settings.model_construct().labeling_classes
        rows = np.zeros((4 + len(classes), 1))
        partial = fixed_yolo(path.with_suffix(f".{os.getpid()}.tmp"), rows, classes)
        partial.replace(path)
    return path


def _digest(main: Path, spec: FunctionSpec, env: Mapping[str, str]) -> str:
    """What a probe's answer depends on: the probe, the interpreter, the settings, the entry
    point, every file of framesift and the installed distributions' versions."""
    digest = hashlib.sha256(f"{_PROBE}\0{sys.executable}\0{sys.version}\0{spec}".encode())
    digest.update(json.dumps(sorted(env.items())).encode())
    for path in [main, *sorted((_REPO / "shared" / "framesift").rglob("*"))]:
        if path.is_file() and path.suffix != ".pyc":
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    versions = sorted(
        f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
    )
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()


def loaded(
    spec: FunctionSpec,
    env: Mapping[str, str],
    source: Path | None = None,
) -> Loaded:
    """What ``spec``'s function loads with ``env`` (its settings); ``source``: a folder holding
    ``main.py`` and ``framesift`` (an unpacked archive) instead of the repository's, which is
    always probed afresh."""
    main = (source or _REPO / "functions" / spec.name) / "main.py"
    cached = None if source else CACHE / f"{_digest(main, spec, env)}.json"
    if cached is not None and cached.exists():
        return _parsed(cached.read_text())
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(main), spec.trigger.value, spec.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=source or _REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{spec.name} does not load: {result.stderr.strip()[-2000:]}")
    answer = result.stdout.splitlines()[-1]
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(answer)
        partial.replace(cached)  # whole or absent, whichever test process asks next
    return _parsed(answer)


def _parsed(answer: str) -> Loaded:
    found = json.loads(answer)
    return Loaded(
        frozenset(found["modules"]),
        tuple(Path(file) for file in found["framesift"]),
        frozenset(found["distributions"]),
    )
