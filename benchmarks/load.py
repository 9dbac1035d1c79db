"""Load: N videos uploaded at once to the emulated stack, each processed exactly once.

    .venv/bin/python benchmarks/load.py [--videos 20 --seconds 20]

It starts its own stack (``framesift dev up``'s code), generates N different test videos,
uploads them concurrently to fake-gcs-server (whose notifications drive everything), waits until
every video is sampled and every kept frame has its labeling task (the manifest vendor), then
checks that nothing was done twice and reports throughput and the peak memory (VmHWM, summed
over each function's processes: functions-framework's gunicorn master and workers).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage  # type: ignore[attr-defined]
from memory import group_kib

from framesift.documents import VideoRecord
from framesift_dev.devstack import RAW_BUCKET, DevStack
from framesift_dev.testvideo import generate_test_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stack = DevStack(state_dir=Path(folder) / "stack")
        state = stack.up()
        os.environ.update({k: v for k, v in state.env.items() if not k.startswith("FRAMESIFT_")})
        try:
            run(Path(folder), state, args.videos, args.seconds)
        finally:
            stack.down()


def run(folder: Path, state, count: int, seconds: float) -> None:  # noqa: ANN001
    videos = []
    for index in range(count):
        path = folder / f"drive{index:02d}.mp4"
        generate_test_video(str(path), seconds=seconds + index % 5)  # different lengths
        videos.append(path)
    gcs = storage.Client(project=state.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=state.project)

    def upload(path: Path) -> str:
        blob = gcs.bucket(RAW_BUCKET).blob(f"load/{path.name}")
        blob.upload_from_filename(str(path), content_type="video/mp4")
        return VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        ids = list(pool.map(upload, videos))
    while True:
        done = [db.collection("videos").document(i).get().to_dict() or {} for i in ids]
        frames = [
            f.to_dict() or {}
            for f in db.collection("frames")
            .where(filter=firestore.FieldFilter("collector", "==", "load"))
            .stream()
        ]
        kept = [f for f in frames if f.get("dedup_status") == "kept"]
        if (
            all(v.get("status") == "sampled" for v in done)
            and all(f.get("labeling_status") == "requested" for f in kept)
            and sum(v.get("frames_sampled", 0) for v in done) == len(frames)
        ):
            break
        time.sleep(1)
    elapsed = time.perf_counter() - start
    video_seconds = sum(v.get("duration_s") or 0 for v in done)
    if len({f["id"] for f in frames}) != len(frames):
        raise SystemExit("a frame was written twice")
    manifests = [
        b
        for b in gcs.list_blobs(state.env["FRAMESIFT_FRAMES_BUCKET"], prefix="manifests/")
        if b.name.endswith(".jsonl")
    ]
    lines = Counter(
        json.loads(line)["framesift-frame-id"]
        for blob in manifests
        for line in blob.download_as_text().splitlines()
    )
    if lines != Counter(f["id"] for f in kept):
        raise SystemExit("the labeling tasks are not exactly the kept frames")
    print(
        f"{count} videos, {video_seconds:.0f} s of video, {len(frames)} frames, "
        f"{len(kept)} kept and sent to labeling, in {elapsed:.1f} s"
    )
    print(
        f"throughput: {video_seconds / elapsed:.1f} s of video per s, "
        f"{len(frames) / elapsed:.1f} frames per s; every frame and task exactly once"
    )
    print("| function | peak memory (MiB, all its processes) |")
    print("|---|---|")
    for service in state.services:
        if service.name.startswith("function-"):
            print(f"| {service.name[9:]} | {group_kib(service.pid, 'VmHWM') / 1024:.0f} |")


if __name__ == "__main__":
    main()
