"""A GoPro's GPS track, read from the GPMF telemetry in its video (#30).

GoPro cameras (HERO5 on) write a ``gpmd`` data track (handler "GoPro MET") beside the video:
one GPMF payload a second or so, each timed by the MP4 like any media sample. GPMF is a
Key-Length-Value format (https://github.com/gopro/gpmf-parser, README "GPMF Deeper Dive"):
a FourCC key, a type character, a structure size, a 16-bit repeat count, then
size x repeat bytes of big-endian data padded to 32 bits; type 0 nests more KLVs. A payload
holds ``DEVC`` devices, each with ``STRM`` streams; the GPS stream carries, sticky properties
first (each applying to the KLVs after it in the same nest)::

    DEVC
      STRM
        STNM 'c'  "GPS (Lat., Long., Alt., 2D speed, 3D speed)"
        GPSF 'L'  fix: 0 none, 2 2D, 3 3D
        GPSU 'U'  UTC "yymmddhhmmss.sss" (20yy) of the payload's first sample
        GPSP 'S'  dilution of precision x 100 ("under 500 is good")
        SCAL 'l'  5 divisors
        GPS5 'l'  n samples of latitude, longitude (degrees), altitude (metres, WGS 84),
                  2D and 3D speed: about 18 a second

The samples of a payload are spread evenly over its duration (the MP4's), as gpmf-parser
times them. A payload without a fix or with a DOP of 5 or more is skipped, and one that cannot
be parsed, or whose samples are out of range, is dropped with a note: the video is never failed
for its telemetry.

HERO11 writes GPS9 beside GPS5 (10 Hz each), HERO12 has no GPS, HERO13 writes GPS9 only
(gpmf-parser's README, "HERO11 changes" to "HERO13 changes"): GPS9's samples are complex (type
``?``) laid out by the stream's TYPE (``lllllllSS``): latitude, longitude, altitude, 2D and 3D
speed, days since 2000, seconds since midnight (ms precision), DOP and fix, each sample with its
own time, DOP and fix. Where a payload has GPS9 its GPS5 is not read.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from framesift.capture import EARLIEST, LATEST
from framesift.track import Track, TrackPoint

# The GPS stream's keys, as FourCC bytes.
_DEVC, _STRM = b"DEVC", b"STRM"
_GPS5, _GPSU, _GPSF, _GPSP, _SCAL = b"GPS5", b"GPSU", b"GPSF", b"GPSP", b"SCAL"
_GPS9, _TYPE = b"GPS9", b"TYPE"
GPS9_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # GPS9's day count starts here
MIN_FIX = 2  # GPSF: 2D or 3D lock
MAX_DOP = 500  # GPSP, DOP x 100: GoPro's "under 500 is good"
# struct formats of the numeric type characters (all big-endian).
_NUMBERS = {
    "b": "b",
    "B": "B",
    "s": "h",
    "S": "H",
    "l": "i",
    "L": "I",
    "j": "q",
    "J": "Q",
    "f": "f",
    "d": "d",
}


class GpmfError(ValueError):
    """A payload that is not well-formed GPMF."""


@dataclass(frozen=True)
class Klv:
    key: bytes
    type: str  # "\x00": nested KLVs
    size: int  # bytes per sample
    repeat: int
    data: bytes  # size x repeat bytes, padding left off

    def numbers(self) -> list[tuple[float, ...]]:
        """Each sample's values, for the numeric types."""
        code = _NUMBERS.get(self.type)
        width = struct.calcsize(f">{code}") if code else 0
        if not code or self.size % width:
            raise GpmfError(f"{self.key!r}: type {self.type!r} of size {self.size} is no number")
        row = struct.Struct(f">{self.size // width}{code}")
        return [row.unpack_from(self.data, i * self.size) for i in range(self.repeat)]

    def records(self, layout: str) -> list[tuple[float, ...]]:
        """Each sample of a complex (type ``?``) KLV, its values laid out as the stream's TYPE
        says (one type character a value, e.g. GPS9's ``lllllllSS``)."""
        codes = "".join(_NUMBERS.get(char, "") for char in layout)
        row = struct.Struct(f">{codes}")
        if not layout or len(codes) != len(layout) or row.size != self.size:
            raise GpmfError(f"{self.key!r}: TYPE {layout!r} does not lay out {self.size} bytes")
        return [row.unpack_from(self.data, i * self.size) for i in range(self.repeat)]

    def text(self) -> str:
        return self.data.split(b"\0", 1)[0].decode("ascii", "replace")


def read_klvs(data: bytes) -> Iterator[Klv]:
    """The KLVs at one nesting level of ``data`` (nested ones are read with this again)."""
    at = 0
    while at + 8 <= len(data):
        key = data[at : at + 4]
        type_code, size, repeat = struct.unpack_from(">cBH", data, at + 4)
        length = size * repeat
        end = at + 8 + length
        if end > len(data):
            raise GpmfError(f"{key!r} runs {end - len(data)} bytes past its payload")
        yield Klv(key, type_code.decode("latin-1"), size, repeat, data[at + 8 : end])
        at = end + (-length % 4)  # each KLV is 32-bit aligned


def _gps_utc(text: str) -> datetime | None:
    """GPSU's "yymmddhhmmss.sss" as a UTC time (None: not a time, or outside the bounds
    capture times are kept within)."""
    try:
        when = datetime.strptime("20" + text.strip(), "%Y%m%d%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when if EARLIEST <= when < LATEST else None


def _scaled(rows: list[tuple[float, ...]], scale: tuple[float, ...]) -> list[tuple[float, ...]]:
    """Each value divided by its SCAL (one for all, or one per value)."""
    return [tuple(v / scale[i % len(scale)] for i, v in enumerate(row)) for row in rows]


def _stream_points(stream: bytes, start_ms: float, duration_ms: float) -> list[TrackPoint]:
    """The positions of one GPS stream (STRM) in a payload timed ``start_ms`` for
    ``duration_ms``: GPS5's unless its payload has no fix or a poor one, GPS9's (a time, DOP
    and fix per sample) where each sample has a fix and a good DOP."""
    scale: tuple[float, ...] = (1.0,)
    fix, dop, utc, layout = None, None, None, ""
    located: list[tuple[float, float, float, datetime | None] | None] = []
    for klv in read_klvs(stream):
        if klv.key == _SCAL:
            scale = tuple(value for (value,) in klv.numbers()) or scale
        elif klv.key == _TYPE:
            layout = klv.text()
        elif klv.key == _GPSF:
            fix = klv.numbers()[0][0]
        elif klv.key == _GPSP:
            dop = klv.numbers()[0][0]
        elif klv.key == _GPSU:
            utc = _gps_utc(klv.text())
        elif klv.key == _GPS5:
            if (fix is not None and fix < MIN_FIX) or (dop is not None and dop >= MAX_DOP):
                return []
            step = duration_ms / max(klv.repeat, 1)
            located = [
                (lat, lon, alt, None if utc is None else utc + timedelta(milliseconds=i * step))
                for i, (lat, lon, alt, *_speeds) in enumerate(_scaled(klv.numbers(), scale))
            ]
        elif klv.key == _GPS9:
            located = [
                (lat, lon, alt, _gps9_utc(days, seconds))
                if fix9 >= MIN_FIX and dop9 < MAX_DOP / 100
                else None
                for lat, lon, alt, _, _, days, seconds, dop9, fix9 in _scaled(
                    klv.records(layout), scale
                )
            ]
    points = []
    step_ms = duration_ms / max(len(located), 1)
    for index, sample in enumerate(located):
        if sample is None:
            continue
        latitude, longitude, altitude, when = sample
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise GpmfError(f"{latitude}, {longitude} out of range")
        points.append(
            TrackPoint(
                round(start_ms + index * step_ms),
                latitude,
                longitude,
                altitude if math.isfinite(altitude) else None,
                when,
            )
        )
    return points


def _gps9_utc(days: float, seconds: float) -> datetime | None:
    """GPS9's days since 2000 and seconds since midnight as a UTC time (None: outside the
    bounds capture times are kept within)."""
    try:
        when = GPS9_EPOCH + timedelta(days=days, seconds=seconds)
    except OverflowError:
        return None
    return when if EARLIEST <= when < LATEST else None


def payload_points(payload: bytes, start_ms: float, duration_ms: float) -> list[TrackPoint]:
    """Every position in one GPMF payload (its time in the video and its duration): GPS9's
    where it has them (a HERO11 writes both), else GPS5's."""
    found: dict[bytes, list[TrackPoint]] = {_GPS5: [], _GPS9: []}
    for device in read_klvs(payload):
        if device.key != _DEVC:
            continue
        for stream in read_klvs(device.data):
            keys = {k.key for k in read_klvs(stream.data)} if stream.key == _STRM else set()
            for key in found.keys() & keys:
                found[key] += _stream_points(stream.data, start_ms, duration_ms)
    return found[_GPS9] or found[_GPS5]


@dataclass(frozen=True)
class Payload:
    """One sample of the ``gpmd`` track: its time from the video's first frame, its length."""

    time_ms: float
    duration_ms: float
    data: bytes


def parse_gpmf(name: str, payloads: list[Payload]) -> Track:
    """The GPS track of a video's GPMF payloads; a payload that is not GPMF, or whose
    positions are out of range, is dropped with a note (``name``: the video's, for it)."""
    points: dict[int, TrackPoint] = {}
    bad: list[str] = []
    for payload in payloads:
        try:
            found = payload_points(payload.data, payload.time_ms, payload.duration_ms)
        except (ValueError, struct.error) as exc:  # GpmfError, or values not as laid out
            bad.append(f"{round(payload.time_ms)} ms: {exc}")
            continue
        points |= {point.time_ms: point for point in found}
    notes = [f"{name} GPMF: {len(bad)} payload(s) dropped, first {bad[0]}"] if bad else []
    return Track(name, [points[t] for t in sorted(points)], notes)
