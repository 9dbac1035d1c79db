"""Test footage made the way devices write it, not the way ffmpeg writes by default (#30).

Every maker writes one small file (a second or two, 320x240 or smaller) into a folder and
returns a :class:`Footage`: the path and what a correct reading of it must find. Nothing is
downloaded; videos come from ffmpeg's lavfi sources, photos from Pillow.

How each device habit is reproduced:

- **Portrait phone video**: frames coded landscape, a display matrix in the track header saying
  "turn 90° clockwise" (or 270°). ffmpeg's CLI writes the matrix only when the video stream is
  copied (an encoder drops ``rotate`` metadata), and it reads its own ``rotate`` option
  counter-clockwise while its demuxers report ``rotate`` clockwise: ``-metadata:s:v:0
  rotate=270`` on a stream copy writes the matrix phones write for 90° clockwise
  ``(0, 1, 0, -1, 0, 0, 0, 0, 1)`` (16.16 fixed point), which ffmpeg 4.x reads back as the tag
  ``rotate=90`` and ffprobe 5.x as side data ``Display Matrix`` with ``rotation: -90``. Both
  ffmpeg builds write the same bytes (``display_matrix`` checks them).
- **HDR**: the SDR content made linear and re-encoded as BT.2020 HLG or PQ with zscale, 10-bit
  HEVC (libx265 main10) tagged as phones tag it; :func:`sdr_reference` is the same content in
  BT.709 8-bit, the rendering a tone-mapper should come close to.
- **Interlaced CCTV/broadcast**: 50 fields a second woven top field first from a 50p source
  with fast motion (so the frames comb), MPEG-2 coded as fields (``+ilme+ildct``), in MPEG-TS
  whose first timestamp is 1.47 s.
- **Capture metadata**: an iPhone's QuickTime ``mdta`` keys (``-movflags use_metadata_tags``:
  ``com.apple.quicktime.location.ISO6709``, ``.make``, ``.model``, ``.software``,
  ``.creationdate`` with its offset) and a phone's MP4 (``creation_time`` in ``mvhd``,
  ``location``, which ffmpeg's mp4 muxer writes as the 3GPP ``loci`` box); bad values go
  through an ffmetadata file, as a 1 MB value cannot be a command-line argument.
- **Photos**: JPEG with EXIF Orientation 1-8 over an asymmetric picture (red top-left, green
  top-right, blue bottom-left as displayed), DateTimeOriginal with OffsetTimeOriginal, a GPS IFD
  of rationals and Make/Model/Software; and one whose EXIF block is cut short.

``ffmpeg`` picks the build that makes a case (the machine's 5.1, or the static 4.2.2 from
imageio-ffmpeg): both make every case; :data:`OLD_FFMPEG_CANNOT_READ` names the cases 4.2.2
cannot read.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

SIZE = (320, 240)  # coded width, height of every video case
SECONDS = 1.5
# The phone's matrix for 90° clockwise (a, b, u, c, d, v, x, y, w) as ISO BMFF stores it:
# 16.16 fixed point, w 2.30.
PHONE_MATRIX = {
    0: (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30),
    90: (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30),
    270: (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30),
}
# The value ffmpeg's CLI takes for "rotate" to write the phone's matrix for each clockwise turn.
_CLI_ROTATE = {90: 270, 270: 90}
# Cases the static ffmpeg 4.2.2 cannot read: it crashes (SIGSEGV) opening any MPEG-TS input.
OLD_FFMPEG_CANNOT_READ = frozenset({"interlaced-late"})


@dataclass(frozen=True)
class Capture:
    """Capture metadata a correct reading finds (None: absent, or bad and to be dropped)."""

    captured_at: datetime | None = None  # UTC
    utc_offset: str | None = None  # as the source gives it, e.g. "+02:00"
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None


@dataclass(frozen=True)
class Expected:
    """What a correct reading of a case finds."""

    width: int  # as displayed: after rotation or EXIF orientation
    height: int
    coded_width: int
    coded_height: int
    rotation: int = 0  # degrees clockwise a viewer turns the coded picture
    orientation: int | None = None  # EXIF Orientation of a photo
    start_time_s: float = 0.0  # the container's first presentation time (ffprobe start_time)
    codec: str = "h264"
    format_name: str = "mov,mp4,m4a,3gp,3g2,mj2"
    pix_fmt: str = "yuv420p"
    transfer: str | None = None  # ffprobe color_transfer
    primaries: str | None = None  # ffprobe color_primaries
    matrix: str | None = None  # ffprobe color_space
    field_order: str = "progressive"  # ffprobe field_order: "tt" is top field first
    video_streams: int = 1
    default_stream: int = 0  # index among the video streams of the one a player shows
    moov_first: bool | None = None  # MP4/MOV: index before the media data (faststart)
    vfr: bool = False
    frame_times_s: tuple[float, ...] = ()  # presentation times, where they matter
    capture: Capture = field(default_factory=Capture)
    bad_fields: tuple[str, ...] = ()  # capture fields the file carries bad values for
    audio_only: bool = False

    @property
    def interlaced(self) -> bool:
        return self.field_order not in ("progressive", "unknown")

    @property
    def hdr(self) -> bool:
        return self.transfer in ("arib-std-b67", "smpte2084")


@dataclass(frozen=True)
class Footage:
    name: str
    path: Path
    expected: Expected


def upright(size: tuple[int, int] = SIZE, **fields: Any) -> Expected:
    """What a reading finds of a picture shown as it is coded, ``size`` wide and high."""
    return Expected(
        width=size[0], height=size[1], coded_width=size[0], coded_height=size[1], **fields
    )


def turned(rotation: int, size: tuple[int, int] = SIZE, **fields: Any) -> Expected:
    """What a reading finds of a picture coded ``size`` and shown turned 90° or 270°."""
    w, h = size
    return Expected(width=h, height=w, coded_width=w, coded_height=h, rotation=rotation, **fields)


def _held_upright(ffmpeg: str, coded: Path, path: Path, rotation: int, *mux: str) -> None:
    """``coded`` copied to ``path`` with the phone's display matrix for ``rotation`` (the
    stream copy ffmpeg's CLI needs to write one), and removed."""
    _run(
        ffmpeg,
        *("-i", coded, "-map_metadata", "-1", "-c", "copy"),
        *("-metadata:s:v:0", f"rotate={_CLI_ROTATE[rotation]}", *mux, path),
    )
    coded.unlink()


def _run(ffmpeg: str, *args: str | Path) -> None:
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)]
    done = subprocess.run(command, capture_output=True, timeout=120)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace")[-800:]
        raise RuntimeError(f"{' '.join(command)} failed: {said}")


def _lavfi(source: str) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", source)


def _pattern(size: tuple[int, int] = SIZE, rate: str = "25", seconds: float = SECONDS) -> str:
    return f"testsrc2=size={size[0]}x{size[1]}:rate={rate}:duration={seconds}"


_H264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")


def _h264(ffmpeg: str, path: Path, source: str, *extra: str) -> None:
    _run(ffmpeg, *_lavfi(source), *_H264, *extra, "-movflags", "+faststart", path)


# ---------------------------------------------------------------------------------- probing


def ffprobe(path: Path, *entries: str) -> dict[str, Any]:
    """ffprobe's JSON for ``path`` (the machine's ffprobe: the static build has none)."""
    command = ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams"]
    command += list(entries)
    done = subprocess.run([*command, str(path)], capture_output=True, check=True, timeout=60)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def video_streams(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in info.get("streams", []) if s.get("codec_type") == "video"]


def frame_times(path: Path) -> list[float]:
    """Every video frame's presentation time, in decode order of the first video stream."""
    info = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")
    return [float(f["pts_time"]) for f in info.get("frames", [])]


def display_matrix(path: Path) -> tuple[int, ...]:
    """The first track header's transformation matrix, as the file stores it."""
    data = path.read_bytes()
    at = data.index(b"tkhd")
    version = data[at + 4]
    # version, flags; created, modified, track id, reserved, duration (v1: 8-byte times and
    # duration); reserved 8; layer, alternate group, volume, reserved.
    offset = at + 8 + (32 if version == 1 else 20) + 8 + 8
    return struct.unpack(">9i", data[offset : offset + 36])


def moov_before_mdat(path: Path) -> bool:
    """Whether the top-level ``moov`` box comes before ``mdat`` (faststart)."""
    data, at, order = path.read_bytes(), 0, []
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size == 1:
            size = struct.unpack(">Q", data[at + 8 : at + 16])[0]
        order.append(kind)
        if size < 8:
            break
        at += size
    return order.index(b"moov") < order.index(b"mdat")


def decodes(ffmpeg: str, path: Path) -> bool:
    """Whether ``ffmpeg`` decodes the file's first video (or audio) stream without an error."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        timeout=120,
    )
    return done.returncode == 0 and not done.stderr.strip()


# ----------------------------------------------------------------------------------- videos


def _marked(size: tuple[int, int] = SIZE, seconds: float = SECONDS) -> str:
    """A grey picture with a red block in the top-left corner of the coded picture (so a
    rotation shows in which corner it lands) and the moving test pattern in the middle."""
    w, h = size
    return (
        f"color=gray:size={w}x{h}:rate=25:duration={seconds}[bg];"
        f"{_pattern((w // 2, h // 2), seconds=seconds)}[fg];"
        f"[bg][fg]overlay=x={w // 4}:y={h // 4},"
        f"drawbox=x=0:y=0:w={w // 4}:h={h // 4}:color=red:t=fill"
    )


def portrait(folder: Path, rotation: int = 90, ffmpeg: str = "ffmpeg") -> Footage:
    """A phone held upright: landscape frames, a display matrix turning them ``rotation``
    degrees clockwise (90: an iPhone's MOV, its index after the media data; 270: upside down,
    an Android phone's MP4, its index first)."""
    suffix = ".mov" if rotation == 90 else ".mp4"
    coded = folder / f"portrait-{rotation}-coded{suffix}"
    path = folder / f"portrait-{rotation}{suffix}"
    faststart = () if rotation == 90 else ("-movflags", "+faststart")
    _run(ffmpeg, "-filter_complex", _marked(), *_H264, coded)
    _held_upright(ffmpeg, coded, path, rotation, *faststart)
    return Footage(
        f"portrait-{rotation}",
        path,
        # An iPhone writes the index last, an Android first.
        turned(rotation, moov_first=rotation != 90),
    )


def sdr_reference(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """The HDR cases' content in BT.709 8-bit, tagged so: the rendering tone-mapping aims at."""
    path = folder / "sdr-reference.mp4"
    tags = ("-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709")
    _h264(ffmpeg, path, _pattern(), "-crf", "12", *tags)
    return Footage(
        "sdr-reference",
        path,
        upright(
            transfer="bt709",
            primaries="bt709",
            matrix="bt709",
        ),
    )


HDR_TRANSFER = {"hlg": "arib-std-b67", "pq": "smpte2084"}


def hdr(folder: Path, kind: str = "hlg", ffmpeg: str = "ffmpeg") -> Footage:
    """10-bit HEVC in BT.2020 with HLG or PQ, tagged as phones tag it (iPhones record HLG,
    many Android phones PQ/HDR10), holding :func:`sdr_reference`'s content: its BT.709 light
    made linear with SDR white at 100 cd/m² and coded again in BT.2020."""
    transfer = HDR_TRANSFER[kind]
    path = folder / f"hdr-{kind}.mp4"
    to_hdr = (
        "format=yuv420p,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,"
        "zscale=t=linear:npl=100,format=gbrpf32le,"
        f"zscale=p=bt2020:t={transfer}:m=bt2020nc:r=tv,format=yuv420p10le"
    )
    _run(
        ffmpeg,
        *_lavfi(_pattern()),
        *("-vf", to_hdr, "-c:v", "libx265", "-preset", "ultrafast", "-crf", "12"),
        *("-profile:v", "main10", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1"),
        *("-x265-params", "log-level=error"),
        *("-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc"),
        *("-movflags", "+faststart", path),
    )
    return Footage(
        f"hdr-{kind}",
        path,
        upright(
            codec="hevc",
            pix_fmt="yuv420p10le",
            transfer=transfer,
            primaries="bt2020",
            matrix="bt2020nc",
        ),
    )


LATE_START_S = 1.47


def interlaced_late_ts(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """A CCTV recorder's or broadcast capture: MPEG-2, 25 frames of two fields each, top field
    first and taken 20 ms apart (a bar sweeping 16 px a field combs at its edges), in MPEG-TS
    whose first timestamp is 1.47 s."""
    path = folder / "interlaced-late.ts"
    w, h = SIZE
    woven = f"[0:v][1:v]overlay=x='mod(t*800,{w})':y=0,tinterlace=mode=interleave_top,setfield=tff"
    _run(
        ffmpeg,
        *_lavfi(_pattern(rate="50")),
        *_lavfi(f"color=white:size=24x{h}:rate=50:duration={SECONDS}"),
        *("-filter_complex", woven, "-c:v", "mpeg2video", "-q:v", "3"),
        *("-flags", "+ilme+ildct", "-top", "1", "-r", "25"),
        *("-muxdelay", "0", "-muxpreload", "0", "-output_ts_offset", str(LATE_START_S)),
        *("-f", "mpegts", path),
    )
    return Footage(
        "interlaced-late",
        path,
        upright(
            codec="mpeg2video",
            format_name="mpegts",
            field_order="tt",
            start_time_s=LATE_START_S,
        ),
    )


def interlaced_portrait(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """A camcorder's interlaced H.264 (MBAFF, top field first, fields 20 ms apart as in
    :func:`interlaced_late_ts`: a white bar sweeping a grey picture) held upright: the phone's
    display matrix for 90° clockwise over the coded 320x240, a red block in the coded top-left
    corner."""
    coded = folder / "interlaced-portrait-coded.mp4"
    path = folder / "interlaced-portrait.mp4"
    w, h = SIZE
    woven = (
        f"[0:v]drawbox=x=0:y=0:w={w // 4}:h={h // 4}:color=red:t=fill[bg];"
        f"[bg][1:v]overlay=x='mod(t*800,{w})':y={h // 4},tinterlace=mode=interleave_top,"
        "setfield=tff"
    )
    _run(
        ffmpeg,
        *_lavfi(f"color=gray:size={w}x{h}:rate=50:duration={SECONDS}"),
        # The bar in the middle half, clear of the corners' marks.
        *_lavfi(f"color=white:size=24x{h // 2}:rate=50:duration={SECONDS}"),
        *("-filter_complex", woven, *_H264, "-flags", "+ildct+ilme", "-x264-params", "tff=1"),
        *("-r", "25", coded),
    )
    _held_upright(ffmpeg, coded, path, 90, "-movflags", "+faststart")
    return Footage("interlaced-portrait", path, turned(90, field_order="tt", moov_first=True))


def vfr(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """Variable frame rate, as phones write when the light drops or the encoder is busy:
    25 fps with 0.4 s missing after 0.4 s, then three frames at 12.5 fps."""
    path = folder / "vfr.mp4"
    keep = "select='lt(n,10)+between(n,20,29)+between(n,30,35)*not(mod(n,2))'"
    _run(
        ffmpeg,
        *_lavfi(_pattern()),
        *("-vf", keep, "-vsync", "vfr", *_H264, "-movflags", "+faststart", path),
    )
    times = tuple(
        [k * 0.04 for k in range(10)]
        + [0.8 + k * 0.04 for k in range(10)]
        + [1.2 + k * 0.08 for k in range(3)]
    )
    if _major(ffmpeg) < 5:
        times = times[:-1]  # ffmpeg 4's -vsync vfr drops the last frame
    return Footage(
        "vfr",
        path,
        upright(vfr=True, frame_times_s=times),
    )


def _plain(
    folder: Path, name: str, codec_args: tuple[str, ...], codec: str, format_name: str,
    ffmpeg: str, size: tuple[int, int] = SIZE, pix_fmt: str = "yuv420p",
) -> Footage:  # fmt: skip
    path = folder / name
    _run(ffmpeg, *_lavfi(_pattern(size)), *codec_args, path)
    return Footage(
        path.stem,
        path,
        upright(size, codec=codec, format_name=format_name, pix_fmt=pix_fmt),
    )


def vp9_webm(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    args = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k")
    args += ("-pix_fmt", "yuv420p")
    return _plain(folder, "vp9.webm", args, "vp9", "matroska,webm", ffmpeg)


def av1(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """AV1 in MP4: SVT-AV1 on ffmpeg 5.1 (as Android's hardware encoders are stood in for),
    libaom on 4.2.2 (the only AV1 encoder it has, experimental there)."""
    if _has_encoder(ffmpeg, "libsvtav1"):
        args: tuple[str, ...] = ("-c:v", "libsvtav1", "-preset", "12")
    else:
        args = ("-c:v", "libaom-av1", "-cpu-used", "8", "-strict", "experimental")
    args += ("-pix_fmt", "yuv420p", "-movflags", "+faststart")
    return _plain(folder, "av1.mp4", args, "av1", "mov,mp4,m4a,3gp,3g2,mj2", ffmpeg, (160, 120))


def mjpeg_avi(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """Motion JPEG in AVI: dashcams, trail cameras and old digital cameras (full-range JPEG)."""
    args = ("-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p")
    return _plain(folder, "mjpeg.avi", args, "mjpeg", "avi", ffmpeg, pix_fmt="yuvj420p")


def two_video_streams(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """Two video streams (a 360° or dual-camera recording, a preview track): the second,
    160x120, is the default; the first, 320x240, is not."""
    path = folder / "two-streams.mp4"
    _run(
        ffmpeg,
        *_lavfi(_pattern()),
        *_lavfi(_pattern((160, 120))),
        *("-map", "0:v", "-map", "1:v", *_H264),
        *("-disposition:v:0", "0", "-disposition:v:1", "default"),
        *("-movflags", "+faststart", path),
    )
    return Footage(
        "two-streams",
        path,
        upright(
            (160, 120),
            video_streams=2,
            default_stream=1,
        ),
    )


def moov_at_end(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """A camera's MP4 written as it records: media data first, the index (moov) last."""
    path = folder / "moov-at-end.mp4"
    _run(ffmpeg, *_lavfi(_pattern()), *_H264, path)
    return Footage(
        "moov-at-end",
        path,
        upright(moov_first=False),
    )


def audio_only(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """A voice memo named like a video: AAC in MP4, no video stream."""
    path = folder / "voice-memo.mp4"
    _run(ffmpeg, *_lavfi(f"sine=frequency=440:duration={SECONDS}"), "-c:a", "aac", path)
    return Footage(
        "audio-only",
        path,
        Expected(width=0, height=0, coded_width=0, coded_height=0, codec="", audio_only=True),
    )


# ------------------------------------------------------------------------ capture metadata

IPHONE = Capture(
    captured_at=datetime(2024, 5, 4, 12, 3, 22, tzinfo=UTC),
    utc_offset="+02:00",
    latitude=48.8584,
    longitude=2.2945,
    altitude=35.0,
    make="Apple",
    model="iPhone 15 Pro",
    software="17.4.1",
)
ANDROID = Capture(
    captured_at=datetime(2024, 5, 4, 12, 3, 22, tzinfo=UTC),
    latitude=48.8584,
    longitude=2.2945,
)


def _metadata_file(folder: Path, name: str, tags: dict[str, bytes]) -> Path:
    """An ffmetadata file: values of any length or bytes ('=', ';', '#', '\\' and newlines are
    escaped)."""
    lines = [b";FFMETADATA1"]
    for key, value in tags.items():
        for special in (b"\\", b"=", b";", b"#", b"\n"):
            value = value.replace(special, b"\\" + special)
        lines.append(key.encode() + b"=" + value)
    path = folder / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _tagged(folder: Path, name: str, tags: dict[str, bytes], ffmpeg: str, *mux: str) -> Path:
    coded = folder / f"{name}-coded.mp4"
    path = folder / name
    _h264(ffmpeg, coded, _pattern())
    metadata = _metadata_file(folder, f"{name}.ffmeta", tags)
    _run(
        ffmpeg,
        *("-i", coded, "-f", "ffmetadata", "-i", metadata),
        *("-map", "0", "-map_metadata", "1", "-c", "copy", *mux, path),
    )
    coded.unlink()
    metadata.unlink()
    return path


def iphone_metadata(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """An iPhone's MOV: QuickTime ``mdta`` keys for place (ISO 6709), make, model, software and
    the local creation date with its offset, ``creation_time`` (UTC) in the movie header."""
    tags = {
        "creation_time": b"2024-05-04T12:03:22.000000Z",
        "com.apple.quicktime.creationdate": b"2024-05-04T14:03:22+0200",
        "com.apple.quicktime.location.ISO6709": b"+48.8584+002.2945+035.000/",
        "com.apple.quicktime.make": b"Apple",
        "com.apple.quicktime.model": b"iPhone 15 Pro",
        "com.apple.quicktime.software": b"17.4.1",
    }
    path = _tagged(folder, "iphone.mov", tags, ffmpeg, "-movflags", "use_metadata_tags")
    return Footage(
        "iphone-metadata",
        path,
        upright(capture=IPHONE, moov_first=False),
    )


def android_metadata(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """A phone's MP4: ``creation_time`` in the movie header, the place given as ISO 6709 (no
    altitude) and written by ffmpeg's mp4 muxer as the 3GPP ``loci`` box (binary fixed point;
    Android's own muxer writes the ``©xyz`` string instead, which only ffmpeg's mov muxer
    writes); no make or model (MP4 has no such atom)."""
    tags = {"creation_time": b"2024-05-04T12:03:22.000000Z", "location": b"+48.8584+002.2945/"}
    path = _tagged(folder, "android.mp4", tags, ffmpeg, "-movflags", "+faststart")
    return Footage(
        "android-metadata",
        path,
        upright(capture=ANDROID, moov_first=True),
    )


_ALL_BUT_SOFTWARE = ("captured_at", "latitude", "longitude", "altitude", "make", "model")
BIG_TAG_BYTES = 1 << 20
BAD_UTF8 = b"Cam\xff\xfe\xc3("  # not UTF-8: a lone 0xff, 0xfe, a cut two-byte sequence


def bad_metadata(folder: Path, ffmpeg: str = "ffmpeg") -> Footage:
    """Metadata a broken or hostile writer leaves: a creation time in year 9999, a local date in
    year 0, a latitude of 200, a model of 1 MB and a make that is not UTF-8; the software is
    good and must be kept."""
    tags = {
        "creation_time": b"9999-12-31T23:59:59.000000Z",
        "com.apple.quicktime.creationdate": b"0000-01-01T00:00:00+0000",
        "com.apple.quicktime.location.ISO6709": b"+200.0000+002.2945+035.000/",
        "com.apple.quicktime.make": BAD_UTF8,
        "com.apple.quicktime.model": b"M" * BIG_TAG_BYTES,
        "com.apple.quicktime.software": b"17.4.1",
    }
    path = _tagged(folder, "bad-metadata.mov", tags, ffmpeg, "-movflags", "use_metadata_tags")
    return Footage(
        "bad-metadata",
        path,
        upright(
            capture=Capture(software="17.4.1"),
            bad_fields=_ALL_BUT_SOFTWARE,
        ),
    )


# ----------------------------------------------------------------------------------- photos

_JPEG = {"codec": "mjpeg", "format_name": "image2", "pix_fmt": "yuvj420p"}
PHOTO_STORED = (160, 120)  # as the sensor writes: landscape
# What a viewer does to the stored picture for each EXIF orientation (Pillow's names).
ORIENTATION_TRANSPOSE: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,  # 90° clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,  # 90° counter-clockwise
}
_UNDO = {Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90}
_UNDO[Image.Transpose.ROTATE_90] = Image.Transpose.ROTATE_270
MARKS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
PHOTO_CAPTURE = Capture(
    captured_at=datetime(2024, 5, 4, 12, 3, 22, tzinfo=UTC),
    utc_offset="+02:00",
    latitude=48.858370,  # 48° 51' 30.13" N
    longitude=2.294481,  # 2° 17' 40.13" E
    altitude=35.0,
    make="Canon",
    model="Canon EOS R6",
    software="Firmware Version 1.8.1",
)


def displayed_photo(size: tuple[int, int]) -> Image.Image:
    """The picture as a person should see it: a grey ramp, red block top-left, green top-right,
    blue bottom-left (bottom-right left grey), so every one of the 8 orientations differs."""
    w, h = size
    picture = Image.linear_gradient("L").resize(size).convert("RGB")
    bw, bh = w // 4, h // 4
    for colour, (x, y) in zip(MARKS.values(), [(0, 0), (w - bw, 0), (0, h - bh)], strict=True):
        picture.paste(colour, (x, y, x + bw, y + bh))
    return picture


def mark_corners(picture: Image.Image) -> dict[str, str]:
    """Which mark colour sits in each corner of ``picture`` ('' for none)."""
    rgb = picture.convert("RGB")
    w, h = rgb.size
    corners = {"tl": (2, 2), "tr": (w - 3, 2), "bl": (2, h - 3), "br": (w - 3, h - 3)}
    found = {}
    for corner, point in corners.items():
        pixel = rgb.getpixel(point)
        assert isinstance(pixel, tuple)
        near = [
            n
            for n, c in MARKS.items()
            if max(abs(a - b) for a, b in zip(pixel, c, strict=True)) < 70
        ]
        found[corner] = near[0] if near else ""
    return found


def _rational(value: float, denominator: int = 100) -> Fraction:
    return Fraction(round(value * denominator), denominator)


def _dms(degrees: float) -> tuple[Fraction, Fraction, Fraction]:
    whole = int(degrees)
    minutes = int((degrees - whole) * 60)
    seconds = (degrees - whole - minutes / 60) * 3600
    return Fraction(whole), Fraction(minutes), _rational(seconds)


def photo_exif(orientation: int, capture: Capture = PHOTO_CAPTURE) -> Image.Exif:
    """A camera's EXIF: IFD0 with Orientation, Make, Model, Software and DateTime, the Exif IFD
    with DateTimeOriginal and OffsetTimeOriginal, a GPS IFD of rationals."""
    from PIL.TiffImagePlugin import IFDRational

    assert capture.captured_at and capture.latitude and capture.longitude and capture.altitude
    local = "2024:05:04 14:03:22"
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = capture.make
    exif[0x0110] = capture.model
    exif[0x0131] = capture.software
    exif[0x0132] = local
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = local  # DateTimeOriginal
    exif_ifd[0x9011] = capture.utc_offset  # OffsetTimeOriginal
    gps = exif.get_ifd(0x8825)

    def rationals(values: tuple[Fraction, ...]) -> tuple[IFDRational, ...]:
        return tuple(IFDRational(v.numerator, v.denominator) for v in values)

    gps[0x0000] = b"\x02\x03\x00\x00"  # GPSVersionID 2.3
    gps[0x0001] = "N"
    gps[0x0002] = rationals(_dms(capture.latitude))
    gps[0x0003] = "E"
    gps[0x0004] = rationals(_dms(capture.longitude))
    gps[0x0005] = b"\x00"  # above sea level
    gps[0x0006] = rationals((_rational(capture.altitude),))[0]
    return exif


def exif_photo(folder: Path, orientation: int) -> Footage:
    """A camera JPEG with EXIF Orientation ``orientation``: the pixels stored as the sensor saw
    them (160x120), the orientation saying how to turn them for display."""
    sw, sh = PHOTO_STORED
    turned = orientation >= 5
    displayed_size = (sh, sw) if turned else (sw, sh)
    transpose = ORIENTATION_TRANSPOSE[orientation]
    picture = displayed_photo(displayed_size)
    stored = picture if transpose is None else picture.transpose(_UNDO.get(transpose, transpose))
    assert stored.size == PHOTO_STORED
    path = folder / f"exif-{orientation}.jpg"
    stored.save(path, quality=95, exif=photo_exif(orientation))
    return Footage(
        f"exif-{orientation}",
        path,
        Expected(
            width=displayed_size[0],
            height=displayed_size[1],
            coded_width=sw,
            coded_height=sh,
            orientation=orientation,
            capture=PHOTO_CAPTURE,
            **_JPEG,
        ),
    )


def truncated_exif_photo(folder: Path) -> Footage:
    """A JPEG whose EXIF block is cut short (a writer that crashed, a tool that capped the
    segment) after a third of it: IFD0's Orientation, Make and Model are whole, the Software
    string, DateTime and the Exif and GPS IFDs they point to are cut off. The picture itself is
    whole and upright: it must be read, with what is whole kept and the rest dropped."""
    whole = photo_exif(1).tobytes()
    cut = whole[: len(whole) // 3]
    path = folder / "exif-truncated.jpg"
    displayed_photo(PHOTO_STORED).save(path, quality=95, exif=cut)
    return Footage(
        "exif-truncated",
        path,
        upright(
            PHOTO_STORED,
            capture=Capture(make=PHOTO_CAPTURE.make, model=PHOTO_CAPTURE.model),
            bad_fields=("captured_at", "latitude", "longitude", "altitude", "software"),
            **_JPEG,
        ),
    )


# ------------------------------------------------------------------------------ the matrix


def _major(ffmpeg: str) -> int:
    said = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"version n?(\d+)\.", said)
    return int(found[1]) if found else 999


def _has_encoder(ffmpeg: str, name: str) -> bool:
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
    )
    return any(line.split()[1:2] == [name] for line in done.stdout.splitlines() if line.strip())


VIDEO_MAKERS = {
    "portrait-90": lambda folder, ffmpeg: portrait(folder, 90, ffmpeg),
    "portrait-270": lambda folder, ffmpeg: portrait(folder, 270, ffmpeg),
    "sdr-reference": sdr_reference,
    "hdr-hlg": lambda folder, ffmpeg: hdr(folder, "hlg", ffmpeg),
    "hdr-pq": lambda folder, ffmpeg: hdr(folder, "pq", ffmpeg),
    "interlaced-late": interlaced_late_ts,
    "interlaced-portrait": interlaced_portrait,
    "vfr": vfr,
    "vp9": vp9_webm,
    "av1": av1,
    "mjpeg": mjpeg_avi,
    "two-streams": two_video_streams,
    "moov-at-end": moov_at_end,
    "audio-only": audio_only,
    "iphone-metadata": iphone_metadata,
    "android-metadata": android_metadata,
    "bad-metadata": bad_metadata,
    "gopro": lambda folder, ffmpeg: gopro(folder, ffmpeg),
}


def make_videos(folder: Path, ffmpeg: str = "ffmpeg") -> dict[str, Footage]:
    """Every video case, made with ``ffmpeg``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {name: make(folder, ffmpeg) for name, make in VIDEO_MAKERS.items()}


def make_photos(folder: Path) -> dict[str, Footage]:
    folder.mkdir(parents=True, exist_ok=True)
    photos = {f"exif-{o}": exif_photo(folder, o) for o in ORIENTATION_TRANSPOSE}
    photos["exif-truncated"] = truncated_exif_photo(folder)
    return photos


# ------------------------------------------------------------------------ drone telemetry

DRONE_START = (48.8584, 2.2945, 85.3)  # latitude, longitude, metres above sea level
DRONE_DEGREES_PER_S = (0.0009, -0.0004)  # north-west at about 100 m/s (a fast test flight)
DRONE_CUE_MS = 300  # a cue every 0.3 s, so frames at whole seconds fall between cues


def drone_position(time_ms: float) -> tuple[float, float]:
    """Where the generated flight is at ``time_ms`` (it flies a straight line)."""
    seconds = time_ms / 1000
    return (
        DRONE_START[0] + DRONE_DEGREES_PER_S[0] * seconds,
        DRONE_START[1] + DRONE_DEGREES_PER_S[1] * seconds,
    )


def _srt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def dji_srt(path: Path, seconds: float = SECONDS, longitude_key: str = "longitude") -> Path:
    """A DJI drone's telemetry sidecar for a video of ``seconds``: one SubRip cue every
    ``DRONE_CUE_MS``, each with the frame count, the local time and the bracketed telemetry as
    a Mavic 3 writes it (``longitude_key``: some models write ``longtitude``). The first cue is
    before the GPS fix (0, 0), as a drone's first frames often are."""
    cues = []
    for index, start in enumerate(range(0, int(seconds * 1000) + 1, DRONE_CUE_MS)):
        latitude, longitude = drone_position(start) if index else (0.0, 0.0)
        cues.append(
            f"{index + 1}\n{_srt_time(start)} --> {_srt_time(start + DRONE_CUE_MS)}\n"
            f'<font size="28">FrameCnt: {index + 1}, DiffTime: {DRONE_CUE_MS}ms\n'
            f"2024-05-04 14:03:{22 + start // 1000:02d}.{start % 1000:03d}\n"
            f"[iso: 100] [shutter: 1/1000.0] [fnum: 1.7] [ev: 0] [focal_len: 24.00] "
            f"[latitude: {latitude:.6f}] [{longitude_key}: {longitude:.6f}] "
            f"[rel_alt: 50.300 abs_alt: {DRONE_START[2]:.3f}] [ct: 5500] </font>\n"
        )
    path.write_text("\n".join(cues))
    return path


# ------------------------------------------------------------------------- GoPro telemetry

GOPRO_START = (47.3769, 8.5417, 412.5)  # latitude, longitude, metres (WGS 84)
GOPRO_DEGREES_PER_S = (-0.0002, 0.0003)  # south-east at about 30 m/s (a car)
GOPRO_GPS_HZ = 18  # GPS5 samples a second, as HERO5-HERO10 write them
GOPRO_PAYLOAD_MS = 1001  # one GPMF payload a 1001 ms sample of the gpmd track (29.97 fps)
GOPRO_UTC = datetime(2024, 5, 4, 12, 3, 22, tzinfo=UTC)  # the GPS time of the first sample
# GoPro cameras write their local clock into creation_time as if it were UTC: 2 h off here.
GOPRO_CREATION_TIME = "2024-05-04T14:03:20.000000Z"
GPS5_SCALE = (10_000_000, 10_000_000, 1000, 1000, 100)
GPS_STREAM_NAME = b"GPS (Lat., Long., Alt., 2D speed, 3D speed)"


def gopro_position(time_ms: float) -> tuple[float, float]:
    """Where the generated GoPro is ``time_ms`` after its first GPS sample (a straight line)."""
    seconds = time_ms / 1000
    return (
        GOPRO_START[0] + GOPRO_DEGREES_PER_S[0] * seconds,
        GOPRO_START[1] + GOPRO_DEGREES_PER_S[1] * seconds,
    )


def klv(key: bytes, type_char: bytes, size: int, repeat: int, data: bytes) -> bytes:
    """One GPMF KLV: FourCC, type, structure size, repeat, big-endian data padded to 32 bits."""
    assert len(data) == size * repeat, (key, len(data), size, repeat)
    return key + struct.pack(">cBH", type_char, size, repeat) + data + b"\0" * (-len(data) % 4)


def nest(key: bytes, *items: bytes) -> bytes:
    """A KLV of type 0 holding ``items`` (sizes counted in 32-bit words, as GoPro writes)."""
    data = b"".join(items)
    return key + struct.pack(">cBH", b"\0", 4, len(data) // 4) + data


def gps_stream(
    start_ms: float, duration_ms: float, samples: int, fix: int = 3, dop: int = 250
) -> bytes:
    """A GPS STRM of ``samples`` GPS5 positions spread over ``duration_ms`` from ``start_ms``
    (the time since the first sample), in the order and with the sticky properties a HERO8
    writes: TSMP, STNM, GPSF, GPSU, GPSP, UNIT, SCAL, then GPS5."""
    step = duration_ms / samples
    rows = []
    for index in range(samples):
        latitude, longitude = gopro_position(start_ms + index * step)
        values = (latitude, longitude, GOPRO_START[2], 8.3, 8.3)
        rows.append(
            struct.pack(">5i", *(round(v * s) for v, s in zip(values, GPS5_SCALE, strict=True)))
        )
    utc = GOPRO_UTC + timedelta(milliseconds=start_ms)
    gpsu = utc.strftime("%y%m%d%H%M%S.") + f"{utc.microsecond // 1000:03d}"
    return nest(
        b"STRM",
        klv(b"TSMP", b"L", 4, 1, struct.pack(">I", samples)),
        klv(b"STNM", b"c", 1, len(GPS_STREAM_NAME), GPS_STREAM_NAME),
        klv(b"GPSF", b"L", 4, 1, struct.pack(">I", fix)),
        klv(b"GPSU", b"U", 16, 1, gpsu.encode()),
        klv(b"GPSP", b"S", 2, 1, struct.pack(">H", dop)),
        klv(b"UNIT", b"c", 3, 5, b"degdegm\0\0m/sm/s"),
        klv(b"SCAL", b"l", 4, 5, struct.pack(">5i", *GPS5_SCALE)),
        klv(b"GPS5", b"l", 20, samples, b"".join(rows)),
    )


GPS9_SCALE = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
GPS9_STREAM_NAME = b"GPS (Lat., Long., Alt., 2D, 3D, days, secs, DOP, fix)"


def gps9_stream(
    start_ms: float, duration_ms: float, samples: int, fixes: tuple[int, ...] = (), dop: float = 1.5
) -> bytes:
    """A HERO11/HERO13 GPS9 STRM: ``samples`` complex samples (TYPE ``lllllllSS``), each with
    its own UTC time (days since 2000, seconds since midnight), DOP and fix (``fixes``, 3 for
    each sample it leaves out)."""
    step = duration_ms / samples
    rows = []
    for index in range(samples):
        latitude, longitude = gopro_position(start_ms + index * step)
        utc = GOPRO_UTC + timedelta(milliseconds=start_ms + index * step)
        days = (utc - datetime(2000, 1, 1, tzinfo=UTC)).days
        midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
        seconds = (utc - midnight).total_seconds()
        fix = fixes[index] if index < len(fixes) else 3
        values = (latitude, longitude, GOPRO_START[2], 8.3, 8.3, days, seconds, dop, fix)
        scaled = (round(v * s) for v, s in zip(values, GPS9_SCALE, strict=True))
        rows.append(struct.pack(">7i2H", *scaled))
    return nest(
        b"STRM",
        klv(b"STNM", b"c", 1, len(GPS9_STREAM_NAME), GPS9_STREAM_NAME),
        klv(b"TYPE", b"c", 1, 9, b"lllllllSS"),
        klv(b"SCAL", b"l", 4, 9, struct.pack(">9i", *GPS9_SCALE)),
        klv(b"GPS9", b"?", 32, samples, b"".join(rows)),
    )


def gpmf_payload(*streams: bytes) -> bytes:
    """One second of a HERO8's GPMF: the camera device, its accelerometer stream (skipped by
    a GPS reader), then ``streams``."""
    name = b"Accelerometer"
    accelerometer = nest(
        b"STRM",
        klv(b"STNM", b"c", 1, len(name), name),
        klv(b"SIUN", b"c", 4, 1, b"m/s\xb2"),
        klv(b"SCAL", b"s", 2, 1, struct.pack(">h", 418)),
        klv(b"ACCL", b"s", 6, 20, struct.pack(">3h", 4100, -12, 30) * 20),
    )
    return nest(
        b"DEVC",
        klv(b"DVID", b"L", 4, 1, struct.pack(">I", 1)),
        klv(b"DVNM", b"c", 1, 11, b"HERO8 Black"),
        accelerometer,
        *streams,
    )


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags), *parts)  # version 0


def gpmd_track_file(path: Path, payloads: list[tuple[int, bytes]]) -> Path:
    """A QuickTime file holding only a GoPro's telemetry track: ``payloads`` (duration in ms,
    GPMF bytes) as the samples of a ``meta`` track named "GoPro MET" whose sample description
    is ``gpmd`` (gpmf-parser's README, "MP4 Implementation"). ffmpeg's mov demuxer reads it
    as a data stream and its muxer copies it into an MP4 as GoPro writes it; neither can make
    a data track from nothing."""
    timescale, total = 1000, sum(duration for duration, _ in payloads)
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    ftyp = _box(b"ftyp", b"qt  ", struct.pack(">I", 0), b"qt  ")
    media = b"".join(data for _, data in payloads)
    offsets, at = [], len(ftyp) + 8
    for _, data in payloads:
        offsets.append(at)
        at += len(data)
    table = _box(
        b"stbl",
        _full_box(b"stsd", 0, struct.pack(">I", 1), _box(b"gpmd", bytes(6), b"\0\x01", bytes(4))),
        _full_box(
            b"stts",
            0,
            struct.pack(">I", len(payloads)),
            *(struct.pack(">II", 1, duration) for duration, _ in payloads),
        ),
        _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(
            b"stsz",
            0,
            struct.pack(">II", 0, len(payloads)),
            *(struct.pack(">I", len(data)) for _, data in payloads),
        ),
        _full_box(
            b"stco", 0, struct.pack(">I", len(offsets)), *(struct.pack(">I", o) for o in offsets)
        ),
    )
    handler = b"\tGoPro MET"
    track = _box(
        b"trak",
        _full_box(b"tkhd", 7, struct.pack(">5I", 0, 0, 1, 0, total), bytes(16), identity, bytes(8)),
        _box(
            b"mdia",
            _full_box(b"mdhd", 0, struct.pack(">4IHH", 0, 0, timescale, total, 0x55C4, 0)),
            _full_box(b"hdlr", 0, b"mhlr", b"meta", bytes(12), bytes([len(handler)]) + handler),
            _box(
                b"minf",
                _box(b"gmhd", _full_box(b"gmin", 0, struct.pack(">6H", 0x40, *[0x8000] * 3, 0, 0))),
                _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"alis", 1))),
                table,
            ),
        ),
    )
    movie_header = _full_box(
        b"mvhd",
        0,
        struct.pack(">4I", 0, 0, timescale, total),
        struct.pack(">IH", 0x10000, 0x100),
        bytes(10),
        identity,
        bytes(24),
        struct.pack(">I", 2),
    )
    path.write_bytes(ftyp + _box(b"mdat", media) + _box(b"moov", movie_header, track))
    return path


def gopro_payloads(seconds: float = SECONDS) -> list[tuple[int, bytes]]:
    """A GoPro's gpmd samples for a video of ``seconds``: one payload every 1001 ms, each with
    18 GPS5 positions a second (fewer in the last, shorter one)."""
    total_ms = round(seconds * 1000)
    payloads = []
    for start in range(0, total_ms, GOPRO_PAYLOAD_MS):
        duration = min(GOPRO_PAYLOAD_MS, total_ms - start)
        samples = max(1, round(GOPRO_GPS_HZ * duration / 1000))
        payloads.append((duration, gpmf_payload(gps_stream(start, duration, samples))))
    return payloads


def gopro(
    folder: Path,
    ffmpeg: str = "ffmpeg",
    payloads: list[tuple[int, bytes]] | None = None,
    name: str = "GX010001.MP4",
) -> Footage:
    """A GoPro's MP4: H.264 video and a ``gpmd`` data track (handler "GoPro MET") of GPMF
    payloads (``payloads``, else :func:`gopro_payloads`), muxed by ffmpeg's mp4 muxer as a
    stream copy, with the camera's local clock in ``creation_time``."""
    coded = folder / f"{name}-coded.mp4"
    telemetry = gpmd_track_file(folder / f"{name}-gpmd.mov", payloads or gopro_payloads())
    _h264(ffmpeg, coded, _pattern())
    path = folder / name
    _run(
        ffmpeg,
        *("-i", coded, "-i", telemetry, "-map", "0:v", "-map", "1:d", "-c", "copy"),
        *("-tag:d", "gpmd", "-metadata", f"creation_time={GOPRO_CREATION_TIME}", path),
    )
    coded.unlink()
    telemetry.unlink()
    return Footage("gopro", path, upright(moov_first=False))
