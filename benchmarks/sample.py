"""Sampler benchmark: framesift's sampler against ffmpeg's own CLI, the classic OpenCV loop and
the decode limit, measured in the same run on the same generated files.

    .venv/bin/python benchmarks/sample.py                # 720p and 1080p, 60 s, GOP 60 and 250
    .venv/bin/python benchmarks/sample.py --seconds 300  # the same at 300 s (RSS vs length)
    .venv/bin/python benchmarks/sample.py --picture      # rotation, HDR, interlacing (#30)

Every method runs in its own process. The ffmpeg commands are timed by the wall clock of the
process; the Python methods from their first call, after their imports (a function instance is
warm), and their process's wall time is shown too. Peak RSS is the largest of the process and
the ffmpeg it ran. All sample one frame per second and write JPEGs:

- decode limit:  ``ffmpeg -i X -f null -`` (decodes every frame, writes nothing): the baseline
- decode limit, a thread per CPU: the same with ``-threads`` the CPU count (ffmpeg's default is
                 one more), as framesift decodes every frame
- decode refs:   ``ffmpeg -skip_frame noref -i X -f null -`` (decodes reference frames only)
- decode refs, four threads per CPU: the same with the thread count framesift gives ffmpeg
                 when it skips frames
- ffmpeg CLI:    ``ffmpeg -i X -vf fps=1 -q:v 3 %06d.jpg``
- OpenCV loop:   read every frame, keep ``frame_id % round(fps) == 0``, ``cv2.imencode``
- framesift:     ``framesift.media.Sampling`` (JPEGs, timestamps, pHash, sharpness, brightness)
                 as deployed: decoding the reference frames (the default decode), started
                 while the probe runs
- framesift all: the same decoding every frame (``FRAMESIFT_REFERENCE_DECODE_MIN_FRAMES=0``)
- framesift key: the same with ``keyframes_only`` (decodes keyframes only)
- embedded run:  ``framesift run``'s pipeline on the video: sample, hash, dedup, record,
                 manifest tasks, export to the warehouse (after its imports; CPU includes them)

``--picture`` measures instead what making each frame what a person sees costs: a plain H.264
file and, made from it, the same stream with a phone's display matrix (ffmpeg turns every decoded
frame), 10-bit HEVC HLG (kept frames tone-mapped) and interlaced MPEG-2 (every frame through
bwdif), each against a plain decode of the same file (``-noautorotate``), with framesift as the
sampler plans it and with no filter of the picture's.

The OpenCV loop needs ``opencv-python-headless`` (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from framesift import media
from framesift.config import Settings
from framesift.messages import PLAIN_PICTURE
from framesift.sampling import DecodeMode, SamplingPolicy
from framesift.stages.sampler import LIKELY_FPS
from framesift_dev.testvideo import generate_test_video

# Comparable JPEG settings: ffmpeg's -q:v 3 and libjpeg quality 90 give files of similar size.
FFMPEG_QSCALE = 3
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Video:
    height: int
    seconds: int
    gop: int

    @property
    def name(self) -> str:
        return f"{self.height}p_{self.seconds}s_gop{self.gop}.mp4"

    @property
    def size(self) -> str:
        return {720: "1280x720", 1080: "1920x1080"}[self.height]


@dataclass(frozen=True)
class Run:
    wall_s: float  # the whole process
    seconds: float  # the method's own time (the Python methods' after their imports)
    cpu_s: float  # user + system, the process and the ffmpeg it ran
    rss_mb: float
    frames: int


Command = Callable[[str, str], list[str]]


def _run(command: Command, video: Path) -> Run:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        process = subprocess.Popen(
            command(str(video), out), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        stdout = process.stdout.read() if process.stdout else b""
        # wait4, not wait: its rusage is this one process's and its reaped children's alone.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{command(str(video), out)[:3]} failed with status {status}")
        said = json.loads(stdout) if stdout else {}
        frames = said.get("frames", sum(1 for _ in Path(out).iterdir()))
    seconds = said.get("seconds", wall)
    return Run(wall, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, frames)


def _rounds(methods: dict[str, Command], video: Path, repeat: int) -> dict[str, list[Run]]:
    """Each method's runs on ``video``. Rounds interleave the methods, so a slow spell of a
    shared machine hits them all."""
    runs: dict[str, list[Run]] = {method: [] for method in methods}
    for _ in range(repeat):
        for method, command in methods.items():
            runs[method].append(_run(command, video))
    return runs


def _medians(runs: list[Run]) -> tuple[float, float]:
    """The median time and CPU time of a method's runs."""
    return statistics.median(r.seconds for r in runs), statistics.median(r.cpu_s for r in runs)


def worker(method: str, video: str, out_dir: str) -> None:
    """Run one method in this process; print the frames it kept and the seconds it took after
    its imports, as in a warm function instance."""
    if method.startswith("framesift"):
        media.SYSTEM.version  # noqa: B018 - asked once per instance (`ffmpeg -version`), then kept
    start = time.perf_counter()
    count = 0
    if method == "opencv":
        import cv2

        capture = cv2.VideoCapture(video)
        step = round(capture.get(cv2.CAP_PROP_FPS))
        frame_id = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if frame_id % step == 0:
                ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                Path(out_dir, f"{frame_id:08d}.jpg").write_bytes(jpeg.tobytes())
                count += 1
            frame_id += 1
    elif method == "embedded-run":
        from framesift.config import Backend
        from framesift.embedded import EmbeddedPipeline

        settings = Settings(backend=Backend.EMBEDDED, workdir=Path(out_dir) / "work")
        count = EmbeddedPipeline(settings).run([Path(video)], "bench").frames
    else:
        policy = SamplingPolicy(keyframes_only=method == "framesift-keyframes")
        min_frames = 0.0 if method == "framesift-all" else Settings().reference_decode_min_frames
        # As the sampler does: ffmpeg starts on the likely decode mode while the probe runs,
        # and is kept when the probe agrees.
        run = media.Sampling(
            video, policy, JPEG_QUALITY, decode=policy.decode_mode(LIKELY_FPS, min_frames)
        )
        probe = media.probe(video)
        decode = policy.decode_mode(probe.fps, min_frames)
        picture = media.plan_picture(probe, media.SYSTEM).picture
        if method == "framesift-unfiltered":
            picture = PLAIN_PICTURE
        if (run.decode, run.picture, run.origin_s) != (decode, picture, probe.start_time_s):
            run.cancel()
            run = media.Sampling(
                video,
                policy,
                JPEG_QUALITY,
                decode=decode,
                picture=picture,
                origin_s=probe.start_time_s,
            )
        for image in run.images():
            Path(out_dir, f"{image.timestamp_ms:010d}.jpg").write_bytes(image.jpeg)
            count += 1
    print(json.dumps({"frames": count, "seconds": time.perf_counter() - start}))


_FFMPEG = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i"]


def _python(method: str) -> Command:
    return lambda video, out: [sys.executable, __file__, "--worker", method, video, out]


METHODS: dict[str, Command] = {
    "decode limit": lambda video, out: [*_FFMPEG, video, "-f", "null", "-"],
    # The same, one decoder thread per CPU (ffmpeg's own choice is one more): the thread count
    # framesift gives ffmpeg when it decodes every frame, shown so its share of the gain is seen.
    "decode limit, a thread per CPU": lambda video, out: [
        *_FFMPEG[:-1],
        "-threads",
        str(media.SYSTEM.decoder_threads(DecodeMode.ALL)),
        "-i",
        video,
        "-f",
        "null",
        "-",
    ],
    "decode reference frames": lambda video, out: [
        *_FFMPEG[:-1],
        "-skip_frame",
        "noref",
        "-i",
        video,
        "-f",
        "null",
        "-",
    ],
    "decode reference frames, four threads per CPU": lambda video, out: [
        *_FFMPEG[:-1],
        "-skip_frame",
        "noref",
        "-threads",
        str(media.SYSTEM.decoder_threads(DecodeMode.REFERENCE)),
        "-i",
        video,
        "-f",
        "null",
        "-",
    ],
    "ffmpeg CLI fps=1": lambda video, out: [
        *_FFMPEG,
        video,
        "-vf",
        "fps=1",
        "-q:v",
        str(FFMPEG_QSCALE),
        f"{out}/%06d.jpg",
    ],
    "OpenCV loop": _python("opencv"),
    "framesift": _python("framesift"),
    "framesift all frames": _python("framesift-all"),
    "framesift keyframes": _python("framesift-keyframes"),
    "embedded run (framesift run)": _python("embedded-run"),
}


# How each picture case is made from the plain file (ffmpeg's arguments after -i).
_TO_HLG = (
    "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,"
    "zscale=t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt2020:t=arib-std-b67:m=bt2020nc:r=tv,format=yuv420p10le"
)
PICTURE_CASES: dict[str, tuple[str, list[str]]] = {
    "plain H.264": (".mp4", ["-c", "copy"]),
    # The CLI writes "rotate" counter-clockwise on a stream copy: a phone's 90° clockwise.
    "rotated 90 (display matrix)": (".mp4", ["-c", "copy", "-metadata:s:v:0", "rotate=270"]),
    "HDR HLG 10-bit HEVC": (
        ".mp4",
        [
            *("-vf", _TO_HLG, "-c:v", "libx265", "-preset", "ultrafast"),
            *("-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error"),
            *(
                "-color_primaries",
                "bt2020",
                "-color_trc",
                "arib-std-b67",
                "-colorspace",
                "bt2020nc",
            ),
        ],
    ),
    "interlaced MPEG-2 TS": (
        ".ts",
        [
            *("-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "mpeg2video"),
            *("-q:v", "3", "-flags", "+ilme+ildct", "-top", "1", "-f", "mpegts"),
        ],
    ),
}
PICTURE_METHODS: dict[str, Command] = {
    "plain decode": lambda video, out: [
        *_FFMPEG[:-1],
        "-noautorotate",
        "-i",
        video,
        "-f",
        "null",
        "-",
    ],
    "framesift": _python("framesift"),
    "framesift, no filter of the picture's": _python("framesift-unfiltered"),
}


def picture(folder: Path, seconds: int, repeat: int) -> None:
    """The table of what rotation, tone-mapping and deinterlacing cost (--picture)."""
    plain = folder / f"720p_{seconds}s_picture.mp4"
    if not plain.exists():
        generate_test_video(str(plain), seconds=seconds, fps="30", size="1280x720", gop=60)
    print(f"{os.cpu_count()} cores; median of {repeat} interleaved rounds; 1 frame per second")
    print("| video | method | frames | time s | vs plain decode | CPU s | CPU vs decode |")
    print("|" + "---|" * 7)
    for case, (suffix, arguments) in PICTURE_CASES.items():
        path = folder / f"{plain.stem}_{case.split()[0].lower()}{suffix}"
        if not path.exists():
            subprocess.run([*_FFMPEG, str(plain), *arguments, str(path)], check=True)
        runs = _rounds(PICTURE_METHODS, path, repeat)
        limit, limit_cpu = _medians(runs["plain decode"])
        for method, method_runs in runs.items():
            seconds_taken, cpu = _medians(method_runs)
            print(
                f"| {case} | {method} | {method_runs[0].frames or 'all'} | {seconds_taken:.2f} "
                f"| {seconds_taken / limit:.2f}x | {cpu:.2f} | {cpu / limit_cpu:.2f}x |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=int,
        nargs="+",
        default=[60],
        help="video lengths (60 and 300 in the README)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median counts")
    parser.add_argument("--media", type=Path, default=Path(".framesift/bench-media"))
    parser.add_argument(
        "--picture", action="store_true", help="rotation, HDR and interlacing (--seconds: one)"
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("METHOD", "VIDEO", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return

    args.media.mkdir(parents=True, exist_ok=True)
    if args.picture:
        picture(args.media, args.seconds[0], args.repeat)
        return
    videos = [Video(h, n, g) for n in args.seconds for h in (720, 1080) for g in (60, 250)]
    print(f"{os.cpu_count()} cores; median of {args.repeat} interleaved rounds; 1 frame per second")
    columns = ["video", "method", "frames", "time s", "x realtime", "vs decode limit"]
    columns += ["CPU s", "CPU vs decode", "RSS MB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * 9)
    for video in videos:
        path = args.media / video.name
        if not path.exists():
            print(f"generating {path} ...", file=sys.stderr)
            generate_test_video(
                str(path), seconds=video.seconds, fps="30", size=video.size, gop=video.gop
            )
        runs = _rounds(METHODS, path, args.repeat)
        limit, limit_cpu = _medians(runs["decode limit"])
        for method, method_runs in runs.items():
            seconds, cpu = _medians(method_runs)
            frames = method_runs[0].frames or "all"
            print(
                f"| {video.name} | {method} | {frames} | {seconds:.2f} "
                f"| {video.seconds / seconds:.1f} | {seconds / limit:.2f}x | {cpu:.1f} "
                f"| {cpu / limit_cpu:.2f}x | {max(r.rss_mb for r in method_runs):.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
