"""Test media made with ffmpeg's lavfi sources (nothing is downloaded): clips and bad inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path


def bad_videos(folder: Path, good: Path) -> dict[str, Path]:
    """Truncated, corrupt in the middle, a still image, audio only and a frame too large to
    decode safely (8000x6000, over the default FRAMESIFT_MAX_VIDEO_PIXELS), each named .mp4."""
    data = good.read_bytes()
    bad = {
        "truncated": folder / "truncated.mp4",  # faststart: the index survives, the data does not
        "corrupt_middle": folder / "corrupt_middle.mp4",
        "image_as_mp4": folder / "photo.mp4",
        "audio_only": folder / "voice.mp4",
        "huge_frames": folder / "huge.mp4",
    }
    bad["truncated"].write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    middle = len(data) // 2
    corrupt[middle : middle + 4000] = bytes((i * 97 + 13) % 256 for i in range(4000))
    bad["corrupt_middle"].write_bytes(bytes(corrupt))
    lavfi = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i"]
    subprocess.run(
        [
            *lavfi,
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            str(bad["image_as_mp4"]),
        ],
        check=True,
    )
    subprocess.run([*lavfi, "sine=duration=2", "-c:a", "aac", str(bad["audio_only"])], check=True)
    subprocess.run(
        [
            *lavfi,
            "color=c=gray:size=8000x6000:rate=1:duration=2",
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            str(bad["huge_frames"]),
        ],
        check=True,
    )
    return bad


def lavfi_video(path: Path, sources: list[str], *output_args: str) -> None:
    """H.264 from ffmpeg's lavfi sources, played one after another."""
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
    joined = "".join(f"[{i}:v]" for i in range(len(sources)))
    concat = (
        ["-filter_complex", f"{joined}concat=n={len(sources)}:v=1:a=0"] if len(sources) > 1 else []
    )
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            *inputs,
            *concat,
            *output_args,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
