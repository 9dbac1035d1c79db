"""Edge benchmark: what ``framesift edge`` uploads of videos recorded like a camera's, against
uploading the raw videos (the baseline, measured on the same files in the same run), the time
from a file appearing to its labeling tasks, and the agent's CPU and memory per video-hour.

    .venv/bin/python benchmarks/edge.py                 # 1080p30 at 8 Mbit/s, 60 s per scene
    .venv/bin/python benchmarks/edge.py --seconds 300 --json

Each scenario is one video, encoded as a camera encodes (H.264, constant 8 Mbit/s, a keyframe
every 2 s) with temporal sensor noise (``noise=alls=6:allf=t``), sampled at 1 fps:

- parked: a camera that sees three still scenes in turn (colour bars, RGB bars, a colour
  spectrum: the hours a fixed or parked camera records): dedup keeps one frame of each;
- moving: a picture that moves all the time (testsrc2's scrolling pattern, which comes round
  again every few seconds, so dedup drops the frames where it repeats).

The agent runs as ``framesift edge run`` in its own process, against an embedded deployment
(folders, SQLite, the manifest vendor, drained after each video), so the time from the file
appearing (its copy into the agent's folder finished) to its labeling tasks is the agent's work
plus the stability wait (``--stable-seconds``) and the process start, without a network. CPU
(user + system) and peak RSS are the agent's process and the ffmpeg it ran (``wait4``'s
rusage). Uploaded bytes are the journal's: the kept frames' JPEGs, their documents, the video's
record and the messages to dedup; "1 fps, no dedup" is the JPEGs of every sampled frame.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.edge.journal import Journal
from framesift.topology import Collections

FRAMESIFT = str(Path(sys.executable).parent / "framesift")
SIZE, RATE, BITRATE = "1920x1080", 30, "8M"
NOISE = "noise=alls=6:allf=t"


def scenes(kind: str, seconds: float) -> list[str]:
    size = f"size={SIZE}:rate={RATE}"
    if kind == "parked":
        third = seconds / 3
        return [
            f"smptehdbars={size}:duration={third}",
            f"rgbtestsrc={size}:duration={third}",
            f"colorspectrum={size}:duration={third}",
        ]
    return [f"testsrc2={size}:duration={seconds}"]


def record(path: Path, kind: str, seconds: float) -> None:
    """A camera's recording: H.264 at a constant bitrate, a keyframe every 2 s, noisy."""
    sources = scenes(kind, seconds)
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
    joined = "".join(f"[{i}:v]" for i in range(len(sources)))
    graph = f"{joined}concat=n={len(sources)}:v=1:a=0,{NOISE},format=yuv420p"
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph,
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", BITRATE, "-maxrate", BITRATE,
            "-bufsize", "16M", "-g", str(2 * RATE), "-movflags", "+faststart", str(path),
        ],
        check=True,
    )  # fmt: skip


def measure(folder: Path, kind: str, seconds: float, stable_seconds: float) -> dict:
    recorded = folder / f"{kind}.mp4"
    record(recorded, kind, seconds)
    inbox, state = folder / f"inbox-{kind}", folder / f"state-{kind}"
    inbox.mkdir()
    appeared = inbox / recorded.name
    shutil.copyfile(recorded, appeared)
    started = time.monotonic()  # the file is complete in the agent's folder
    env = {
        **os.environ,
        "FRAMESIFT_BACKEND": "embedded",
        "FRAMESIFT_WORKDIR": str(folder / "cloud"),
    }
    agent = subprocess.Popen(
        [
            FRAMESIFT, "edge", "run", str(appeared), "--state-dir", str(state),
            "--collector", f"bench-{kind}", "--stable-seconds", str(stable_seconds),
            "--poll-seconds", "0.2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    _, status, usage = os.wait4(agent.pid, 0)
    elapsed = time.monotonic() - started
    if status != 0:
        raise RuntimeError(f"framesift edge run exited with {status}")
    [entry] = Journal(state / "journal.sqlite3").videos()
    [window] = (state / "windows").iterdir()
    local = SqliteDocumentStore(window / "documents.sqlite3")
    sampled_jpegs = sum(
        int(frame["size_bytes"]) for frame in local.changed_since(Collections.FRAMES, None)
    )
    raw = recorded.stat().st_size
    hours = seconds / 3600
    return {
        "scenario": kind,
        "seconds": seconds,
        "raw_bytes": raw,
        "frames_sampled": entry.frames_sampled,
        "frames_kept": entry.frames_kept,
        "uploaded_bytes": entry.bytes_uploaded,
        "uploaded_share": entry.bytes_uploaded / raw,
        "no_dedup_jpeg_bytes": sampled_jpegs,
        "no_dedup_share": sampled_jpegs / raw,
        "appeared_to_tasks_s": elapsed,
        "stable_seconds": stable_seconds,
        "cpu_s_per_video_hour": (usage.ru_utime + usage.ru_stime) / hours,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="of each scenario's video")
    parser.add_argument("--stable-seconds", type=float, default=2.0)
    parser.add_argument("--scenarios", default="parked,moving")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="framesift-edge-bench-") as tmp:
        results = [
            measure(Path(tmp), kind, args.seconds, args.stable_seconds)
            for kind in args.scenarios.split(",")
        ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'scenario':<9} {'raw MB':>8} {'sampled':>7} {'kept':>5} {'uploaded KB':>11}"
        f" {'share':>7} {'1fps no dedup':>13} {'to tasks s':>10} {'CPU s/video-h':>13}"
        f" {'RSS MB':>7}"
    )
    for r in results:
        print(
            f"{r['scenario']:<9} {r['raw_bytes'] / 1e6:>8.1f} {r['frames_sampled']:>7}"
            f" {r['frames_kept']:>5} {r['uploaded_bytes'] / 1e3:>11.1f}"
            f" {r['uploaded_share']:>7.2%} {r['no_dedup_share']:>13.2%}"
            f" {r['appeared_to_tasks_s']:>10.1f} {r['cpu_s_per_video_hour']:>13.0f}"
            f" {r['peak_rss_mb']:>7.0f}"
        )


if __name__ == "__main__":
    main()
