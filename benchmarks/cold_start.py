"""Cold start per function, on the emulated stack, beside the libraries such a function needs.

    .venv/bin/python benchmarks/cold_start.py [--repeat 3]

In the same run, for each function:

- **bare libraries**: a fresh interpreter importing what any function of this bundle needs
  (functions-framework, numpy, simplejpeg, pydantic, the Storage, Firestore and Pub/Sub clients),
  start to exit: the floor a function's import is compared with;
- **import**: a fresh interpreter importing the function's ``main.py`` and building its handler,
  as a new instance does before its first event;
- **first response**: from starting functions-framework on the function to its first 2xx answer
  to a real event (pushed as Pub/Sub would, or the vendor's callback), polled every 10 ms; the
  events are cheap ones: an upload the sampler ignores (recorded in Firestore), an empty frame
  batch, one kept frame for the manifest vendor, a Scale callback, an export of what the stack
  holds; then the same event again, warm: first minus warm is the cold start's own cost;
- **archive**: the zipped size of the function's source archive (``packaging.function_source``)
  and its number of pinned requirements;
- **idle RSS**: the resident memory of the function's processes after that response.

Medians of ``--repeat`` rounds; ratios are against the bare libraries of the same round.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "infra")]

from memory import group_kib  # noqa: E402

from framesift.events import PubSubMessage, push_body  # noqa: E402
from framesift.messages import ExportRequest, FrameBatch  # noqa: E402
from framesift.topology import (  # noqa: E402  # noqa: E402
    DEDUP,
    EXPORTER,
    FUNCTIONS,
    LABELER,
    SAMPLER,
    WEBHOOK,
    FunctionSpec,
    Topics,
)
from framesift.vendors.registry import SCALE_CALLBACK  # noqa: E402
from framesift_dev.devstack import DevStack, environ, free_port  # noqa: E402
from framesift_dev.loaded import DEPLOYED_ENV, START  # noqa: E402
from framesift_infra.packaging import function_source  # noqa: E402
from tests.support.payloads import FRAME, kept_frames, scale_callback  # noqa: E402

# The kept frame's object the labeler's event names (it signs a URL for it), and its bytes.
KEPT_OBJECTS: list[str] = []
JPEG = b"\xff\xd8 never decoded: the manifest vendor only names it \xff\xd9"
BARE = (
    "import functions_framework, numpy, simplejpeg, pydantic;"
    "from google.cloud import storage, firestore, pubsub_v1"
)


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def pushed(topic: str, data: bytes, attributes: dict[str, str] | None = None) -> dict:
    message = PubSubMessage.of(data, attributes or {}, uuid.uuid4().hex)
    return push_body(message, f"projects/p/subscriptions/{topic}-bench")


def events(project: str, settings: object) -> dict[str, Callable[[int], requests.Response]]:
    """One cheap, real event per function: a request to send to its port."""
    collector = f"bench-{uuid.uuid4().hex[:6]}"
    notification = {
        "attributes": {"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1"},
        "data": {"bucket": "framesift-raw", "name": f"{collector}/notes.txt", "generation": "1"},
    }
    batch = FrameBatch(
        video_doc_id=f"v_{collector}",
        collector=collector,
        video_id="none",
        segment_index=0,
        batch_index=0,
        batch_count=1,
        frames=[],
    )
    kept = kept_frames(settings, 1, batch=collector)
    KEPT_OBJECTS[:] = [frame.object_name for frame in kept.frames]

    def pubsub(topic: str, data: bytes, attributes: dict[str, str] | None = None) -> Callable:
        body = pushed(topic, data, attributes)
        return lambda port: requests.post(
            f"http://127.0.0.1:{port}/projects/{project}/topics/{topic}", json=body, timeout=60
        )

    return {
        SAMPLER.name: pubsub(
            Topics.RAW_OBJECTS,
            json.dumps(notification["data"]).encode(),
            notification["attributes"],
        ),
        DEDUP.name: pubsub(Topics.FRAMES_SAMPLED, batch.model_dump_json().encode()),
        LABELER.name: pubsub(
            Topics.FRAMES_KEPT,
            kept.model_dump_json().encode(),
        ),
        EXPORTER.name: pubsub(Topics.EXPORT_REQUESTS, ExportRequest().model_dump_json().encode()),
        WEBHOOK.name: lambda port: requests.post(
            f"http://127.0.0.1:{port}/scale",
            json=scale_callback(task_id=f"t-{uuid.uuid4().hex[:8]}"),
            headers={SCALE_CALLBACK.header: os.environ["BENCH_SCALE_KEY"]},
            timeout=60,
        ),
    }


def first_response(
    stack: DevStack, spec: FunctionSpec, env: dict[str, str], send: Callable
) -> tuple[float, float, float]:
    """Seconds from starting the function to its first 2xx, seconds of the same event sent
    again (the event's own work, warm), and the idle RSS after them (MiB)."""
    port = free_port()
    command = stack.function_command(spec, port, f"{spec.name}-cold")
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                response = send(port)
            except requests.ConnectionError:
                time.sleep(0.01)
                continue
            if response.status_code // 100 != 2:
                raise RuntimeError(f"{spec.name}: {response.status_code} {response.text[:300]}")
            elapsed = time.perf_counter() - start
            again = time.perf_counter()
            if send(port).status_code // 100 != 2:
                raise RuntimeError(f"{spec.name}: the event sent again failed")
            warm = time.perf_counter() - again
            time.sleep(1.0)  # idle
            return elapsed, warm, group_kib(process.pid, "VmRSS") / 1024
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def archive(spec: FunctionSpec) -> tuple[int, int]:
    source = function_source(spec.name, "manifest")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, asset in source.archive.assets.items():
            if hasattr(asset, "path"):
                zipped.write(asset.path, name)
            else:
                zipped.writestr(name, asset.text)
    return len(buffer.getvalue()), len(source.requirements.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["BENCH_SCALE_KEY"] = key = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as folder:
        stack = DevStack(
            state_dir=Path(folder) / "stack",
            settings_env={"FRAMESIFT_SCALE_CALLBACK_AUTH_KEY": key},
        )
        state = stack.up()
        try:
            env = {**state.env, "FRAMESIFT_SCALE_CALLBACK_AUTH_KEY": key}
            with environ(state.env):
                from google.cloud import firestore  # type: ignore[attr-defined]

                from framesift.config import Settings

                settings = Settings(**{"backend": "gcp", "project": state.project})
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import storage  # type: ignore[attr-defined]

                # What the events name: the webhook's frame, the labeler's kept frame's JPEG.
                firestore.Client(project=state.project).collection("frames").document(FRAME).set(
                    {"id": FRAME, "width": 640, "height": 480}
                )
                sends = events(state.project, settings)
                gcs = storage.Client(project=state.project, credentials=AnonymousCredentials())
                for name in KEPT_OBJECTS:
                    gcs.bucket(settings.frames_bucket).blob(name).upload_from_string(
                        JPEG, content_type="image/jpeg"
                    )
            probe_env = {"PATH": os.environ["PATH"], **DEPLOYED_ENV}
            rows = []
            for spec in FUNCTIONS:
                bare, imports, responses, warms, rss = [], [], [], [], []
                for _ in range(args.repeat):
                    bare.append(timed([sys.executable, "-c", BARE], probe_env))
                    main_py = str(REPO / "functions" / spec.name / "main.py")
                    imports.append(
                        timed(
                            [sys.executable, "-c", START, main_py, spec.trigger.value, spec.name],
                            probe_env,
                        )
                    )
                    elapsed, warm, memory = first_response(stack, spec, env, sends[spec.name])
                    responses.append(elapsed)
                    warms.append(warm)
                    rss.append(memory)
                size, pins = archive(spec)
                b, i, r, w = (statistics.median(v) for v in (bare, imports, responses, warms))
                rows.append(
                    f"| {spec.name} | {b:.2f} | {i:.2f} | {i / b:.2f}x | {r:.2f} | {w:.2f}"
                    f" | {(r - w) / b:.2f}x | {size // 1024} | {pins}"
                    f" | {statistics.median(rss):.0f} |"
                )
        finally:
            stack.down()
    print(
        "| function | bare libraries s | import s | import / bare | first response s"
        " | same event warm s | (first - warm) / bare | archive KiB (zip) | pins"
        " | idle RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
