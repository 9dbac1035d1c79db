"""Beam benchmark: the Beam pipeline on the local runner against the embedded pipeline (the
baseline), on the same generated videos, in the same run.

    .venv-beam/bin/python benchmarks/beam.py                      # 4 videos of 60 s, 720p
    .venv-beam/bin/python benchmarks/beam.py --videos 8 --seconds 120 --json

Each method gets a fresh workdir (folder buckets, SQLite) and the same files, and runs in this
process after a warm-up run, so imports are not timed:

- embedded:      ``framesift run``'s pipeline (the functions' handlers on in-process Pub/Sub,
                 one video after another), its export to DuckDB included (Beam leaves the
                 warehouse to the exporter)
- beam, 1 worker: the Beam pipeline on the DirectRunner in this process
- beam, N workers: the DirectRunner with N worker processes (``--direct_num_workers``,
                 ``multi_processing``), segments and videos spread over them

Reported: wall time, CPU seconds (this process and its children), footage hours sampled per
wall hour, frames sampled per second, and each against the embedded baseline; then the
per-worker model of docs/beam.md: CPU seconds per footage hour, which a cluster's worker of
``v`` vCPUs divides into ``v`` hours per hour while sampling is what limits it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from framesift.beam.pipeline import run, upload_paths
from framesift.config import Backend, Settings
from framesift.embedded import EmbeddedPipeline
from framesift_dev.testvideo import generate_test_video

COLLECTOR = "bench"


@dataclass(frozen=True)
class Measured:
    method: str
    wall_s: float
    cpu_s: float
    frames: int
    footage_s: float

    @property
    def footage_hours_per_hour(self) -> float:
        return self.footage_s / self.wall_s

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_s_per_footage_hour(self) -> float:
        return self.cpu_s / (self.footage_s / 3600)


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # ffmpeg, Beam's workers
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _settings(workdir: Path) -> Settings:
    return Settings(backend=Backend.EMBEDDED, workdir=workdir)


def _embedded(videos: Path, workdir: Path) -> int:
    summary = EmbeddedPipeline(_settings(workdir)).run([videos], COLLECTOR)
    return summary.frames


def _beam(workers: int) -> Callable[[Path, Path], int]:
    args = ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
    if workers > 1:
        args.append("--direct_running_mode=multi_processing")

    def sample(videos: Path, workdir: Path) -> int:
        settings = _settings(workdir)
        listing = upload_paths(settings, [videos], COLLECTOR)
        return run(settings, listing, PipelineOptions(args))["frames_sampled"]

    return sample


def _measure(
    method: str, sample: Callable[[Path, Path], int], videos: Path, scratch: Path, footage_s: float
) -> Measured:
    sample(videos, scratch / f"{method}-warm-up")  # imports, ffmpeg's first start
    started, cpu = time.perf_counter(), _cpu_s()
    frames = sample(videos, scratch / method)
    return Measured(method, time.perf_counter() - started, _cpu_s() - cpu, frames, footage_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--workers", type=int, default=2, help="the multi-process run's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the stages' per-batch logs would time the console
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        videos = scratch / "videos"
        videos.mkdir()
        for index in range(args.videos):
            # Another hue per video: no frame is an exact duplicate of another video's.
            generate_test_video(
                str(videos / f"video{index}.mp4"),
                seconds=args.seconds,
                size=args.size,
                hue=index * 360 / args.videos,
            )
        footage_s = float(args.videos * args.seconds)
        methods: list[tuple[str, Callable[[Path, Path], int]]] = [
            ("embedded", _embedded),
            ("beam, 1 worker", _beam(1)),
            (f"beam, {args.workers} workers", _beam(args.workers)),
        ]
        results = [_measure(name, sample, videos, scratch, footage_s) for name, sample in methods]
    baseline = results[0]
    rows = [
        {
            **asdict(result),
            "footage_hours_per_hour": round(result.footage_hours_per_hour, 1),
            "frames_per_s": round(result.frames_per_s, 2),
            "cpu_s_per_footage_hour": round(result.cpu_s_per_footage_hour, 1),
            "speed_vs_embedded": round(baseline.wall_s / result.wall_s, 2),
        }
        for result in results
    ]
    setup = {"videos": args.videos, "seconds": args.seconds, "size": args.size}
    if args.json:
        print(json.dumps({"setup": setup, "results": rows}, indent=2))
        return
    print(f"{args.videos} videos of {args.seconds} s at {args.size}, 1 frame per second")
    print(
        f"{'method':<18} {'wall s':>7} {'CPU s':>7} {'frames':>6} {'h/h':>6} {'frames/s':>8}"
        f" {'CPU s/h':>8} {'vs embedded':>11}"
    )
    for row in rows:
        print(
            f"{row['method']:<18} {row['wall_s']:>7.1f} {row['cpu_s']:>7.1f} {row['frames']:>6}"
            f" {row['footage_hours_per_hour']:>6} {row['frames_per_s']:>8}"
            f" {row['cpu_s_per_footage_hour']:>8} {row['speed_vs_embedded']:>10}x"
        )


if __name__ == "__main__":
    main()
