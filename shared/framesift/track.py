"""A position per frame where the video carries a track (#30): a DJI drone's ``.SRT`` sidecar,
written beside each video with the same stem (``DJI_0001.MP4``, ``DJI_0001.SRT``).

The sidecar is a SubRip subtitle file with one cue per video frame (or every few), each cue's
start the frame's time in the video and its text the telemetry, e.g.::

    12
    00:00:00,367 --> 00:00:00,400
    <font size="28">FrameCnt: 12, DiffTime: 33ms
    2024-05-04 14:03:22.367
    [iso: 100] [shutter: 1/1000.0] [fnum: 1.7] [latitude: 48.858400] [longitude: 2.294500]
    [rel_alt: 50.300 abs_alt: 85.300] </font>

(some models spell ``longtitude``, the FPV writes ``[altitude: ...]``; formats collected by
https://github.com/JuanIrache/DJI_SRT_Parser). A frame's position is interpolated linearly
between the cues around its timestamp; a cue at 0, 0 is a drone without a GPS fix and is
skipped. Bad cues are dropped with a note, like bad capture metadata (:mod:`framesift.capture`).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from framesift.capture import CaptureFields
from framesift.naming import SIDECAR_EXTENSIONS

# The spellings a sidecar's name may end with (DJI writes .SRT; a copy may have made it .srt).
SIDECAR_SUFFIXES = tuple(s for ext in sorted(SIDECAR_EXTENSIONS) for s in (ext.upper(), ext))
MAX_SIDECAR_BYTES = 64 << 20  # a 30-minute flight at 60 cues a second is about 50 MB
# How far before the first cue or after the last a frame still takes the nearest position.
EDGE_MS = 1000

_CUE_START = re.compile(r"^(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*-->", re.MULTILINE)
_NUMBER = r"([+-]?\d+(?:\.\d+)?)"
_LATITUDE = re.compile(rf"\[\s*latitude\s*:\s*{_NUMBER}")
_LONGITUDE = re.compile(rf"\[\s*longt?itude\s*:\s*{_NUMBER}")
_ALTITUDE = re.compile(rf"(?:abs_alt|\[\s*altitude)\s*:\s*{_NUMBER}")


def sidecar_names(object_name: str) -> list[str]:
    """The names a video's telemetry sidecar may have, beside it."""
    stem = PurePosixPath(object_name).with_suffix("")
    return [f"{stem}{suffix}" for suffix in SIDECAR_SUFFIXES]


def is_sidecar(object_name: str) -> bool:
    return PurePosixPath(object_name).suffix.lower() in SIDECAR_EXTENSIONS


def sidecars_beside(video: Path) -> list[Path]:
    """The telemetry sidecar files beside a local video, uploaded before it so the sampler
    finds them when it plans the video (``framesift run`` and ``framesift upload``)."""
    found = (video.with_suffix(suffix) for suffix in SIDECAR_SUFFIXES)
    return [sidecar for sidecar in found if sidecar != video and sidecar.is_file()]


def with_sidecars(inputs: Iterable[Path]) -> list[Path]:
    """``inputs`` with each one's sidecar beside it just before it, each file once (a sidecar
    named as well is not sent twice)."""
    return list(dict.fromkeys(p for path in inputs for p in (*sidecars_beside(path), path)))


@dataclass(frozen=True)
class TrackPoint:
    time_ms: int  # in the video, as the frames' timestamp_ms
    latitude: float
    longitude: float
    altitude: float | None
    utc: datetime | None = None  # the receiver's time of the position, where the track has one


@dataclass(frozen=True)
class Track:
    name: str  # the sidecar's, for the notes
    points: list[TrackPoint]
    notes: list[str] = field(default_factory=list)

    def position(self, time_ms: int) -> TrackPoint | None:
        """The position at ``time_ms``: interpolated between the cues around it, the nearest
        cue's within ``EDGE_MS`` of the track's ends, else None."""
        points = self.points
        if not points:
            return None
        at = bisect.bisect_left([p.time_ms for p in points], time_ms)
        if at == 0 or at == len(points):
            nearest = points[0] if at == 0 else points[-1]
            if abs(nearest.time_ms - time_ms) > EDGE_MS:
                return None
            return replace(nearest, time_ms=time_ms, utc=_later(nearest, time_ms))
        before, after = points[at - 1], points[at]
        share = (time_ms - before.time_ms) / (after.time_ms - before.time_ms)

        def between(a: float, b: float) -> float:
            return a + (b - a) * share

        altitude = None
        if before.altitude is not None and after.altitude is not None:
            altitude = between(before.altitude, after.altitude)
        return TrackPoint(
            time_ms,
            between(before.latitude, after.latitude),
            between(before.longitude, after.longitude),
            altitude,
            _later(before, time_ms),
        )

    def placed(self, capture: CaptureFields, time_ms: int) -> CaptureFields:
        """A frame's capture fields with the track's position at its time, and its time where
        the track has the receiver's (the container's stay where the track has none)."""
        point = self.position(time_ms)
        notes = capture.metadata_notes + self.notes
        if point is None:
            return capture.model_copy(update={"metadata_notes": notes})
        return capture.model_copy(
            update={
                "latitude": point.latitude,
                "longitude": point.longitude,
                "altitude": point.altitude,
                "metadata_notes": notes,
            }
            | ({} if point.utc is None else {"captured_at": point.utc})
        )


def frame_capture(video: CaptureFields, track: Track | None, time_ms: int) -> CaptureFields:
    """A video frame's capture fields: the video's at the frame's time, placed on the video's
    track where it has one."""
    capture = video.at(time_ms)
    return capture if track is None else track.placed(capture, time_ms)


def _later(point: TrackPoint, time_ms: int) -> datetime | None:
    """The receiver's time at ``time_ms``, from ``point``'s (None: it has none)."""
    if point.utc is None:
        return None
    return point.utc + timedelta(milliseconds=time_ms - point.time_ms)


def _cue_point(time_ms: int, text: str) -> TrackPoint | str | None:
    """A cue's position, why it is bad, or None (no position in it, or no GPS fix)."""
    latitude, longitude = _LATITUDE.search(text), _LONGITUDE.search(text)
    if latitude is None or longitude is None:
        return None
    lat, lon = float(latitude[1]), float(longitude[1])
    if lat == 0 and lon == 0:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and math.isfinite(lat + lon)):
        return f"{lat}, {lon} out of range"
    altitude = _ALTITUDE.search(text)
    return TrackPoint(time_ms, lat, lon, float(altitude[1]) if altitude else None)


def parse_dji_srt(name: str, data: bytes) -> Track:
    """The track in a DJI ``.SRT`` sidecar (none: an empty track), cues in time order."""
    text = data.decode("utf-8", "replace")
    starts = list(_CUE_START.finditer(text))
    points: dict[int, TrackPoint] = {}
    bad: list[str] = []
    for index, start in enumerate(starts):
        hours, minutes, seconds = (int(part) for part in start.groups()[:3])
        millis = int(start[4].ljust(3, "0"))  # ",5" is 500 ms
        time_ms = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        point = _cue_point(time_ms, text[start.end() : end])
        if isinstance(point, str):
            bad.append(f"{time_ms} ms: {point}")
        elif point is not None:
            points[time_ms] = point
    notes = [f"{name}: {len(bad)} cue(s) dropped, first {bad[0]}"] if bad else []
    return Track(name, [points[t] for t in sorted(points)], notes)
