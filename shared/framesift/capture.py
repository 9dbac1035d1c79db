"""Capture metadata: when, where and with which camera a video or photo was taken (#30).

Pure parsing, no I/O: a video's from ffprobe's format and video stream tags, a photo's from its
EXIF (Pillow's ``getexif``, the GPS IFD and OffsetTimeOriginal included). A video frame's
capture time is the video's plus the frame's timestamp (:meth:`CaptureFields.at`).

Where each comes from (the first that is good wins; keys compared lower-case):

- time: QuickTime ``com.apple.quicktime.creationdate`` (local time with its offset, which is
  kept: https://developer.apple.com/documentation/quicktime-file-format/quicktime_metadata_keys),
  else ``creation_time`` (the movie header's UTC time, as ffmpeg reports it); a photo's
  DateTimeOriginal with OffsetTimeOriginal (EXIF 2.31), else the GPS date and time (UTC), else
  DateTimeOriginal alone, taken as UTC with a note (no offset: the zone is unknown);
- place: ``com.apple.quicktime.location.ISO6709``, else ``location`` (ffmpeg's name for the
  3GPP ``loci`` box and QuickTime's ``©xyz``), an ISO 6709 point
  (https://developer.apple.com/documentation/quicktime-file-format/location_metadata); a
  photo's GPS IFD (degrees, minutes, seconds as rationals, N/S E/W, altitude above or below sea
  level);
- camera: ``com.apple.quicktime.make``/``model``/``software``, Android's
  ``com.android.manufacturer``/``model``/``version``, ``make``/``model`` (QuickTime's
  ``©mak``/``©mod``); a photo's Make, Model, Software.

Bad metadata never fails the source: each value that is not a date, out of range, too long or
not UTF-8 is dropped alone and said in ``metadata_notes``. The place is one value: a latitude
of 200 drops the point, not just its latitude (a longitude alone locates nothing).
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field

# Capture times outside these are a clock never set (QuickTime's 1904 and Unix's 1970 epochs),
# or garbage (year 0, 9999); fixed bounds, so a redelivery decides the same.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_TEXT = 256  # characters of a camera make, model or software kept
ALTITUDE_M = (-1_000.0, 100_000.0)  # a mine's floor to a high balloon
_QUOTED = 40  # characters of a bad value quoted in its note


class CaptureFields(BaseModel):
    """When, where and with what a video, photo or frame was taken (None: absent or dropped)."""

    captured_at: datetime | None = None  # UTC
    capture_utc_offset: str | None = None  # the source's own offset, "+02:00", when it gives one
    latitude: float | None = None  # WGS 84 degrees
    longitude: float | None = None
    altitude: float | None = None  # metres above sea level
    camera_make: str | None = None
    camera_model: str | None = None
    camera_software: str | None = None
    # Each value dropped, and why ("latitude 200.0 out of range [-90, 90]").
    metadata_notes: list[str] = Field(default_factory=list)

    def at(self, timestamp_ms: int) -> CaptureFields:
        """A frame's: the source's, ``timestamp_ms`` after its capture time."""
        if self.captured_at is None:
            return self
        later = self.captured_at + timedelta(milliseconds=timestamp_ms)
        return self.model_copy(update={"captured_at": later})


class _Dropped(ValueError):
    """A value that is there but bad: the message says why, for ``metadata_notes``."""


def _quoted(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _QUOTED else text[:_QUOTED] + "...")


def _text(value: object) -> str | None:
    """A camera's name or version: None if empty; dropped if not UTF-8 or too long."""
    text = str(value).replace("\x00", "").strip()
    if "\ufffd" in text:  # ffprobe's (and our) replacement for bytes that are not UTF-8
        raise _Dropped(f"{_quoted(text)} is not UTF-8")
    if len(text) > MAX_TEXT:
        raise _Dropped(f"{len(text)} characters, over {MAX_TEXT}")
    return text or None


def utc_offset(text: str) -> timezone:
    """``+02:00``, ``+0200`` or ``Z`` as a UTC offset."""
    found = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text.strip())
    if text.strip() == "Z":
        return UTC
    if not found or int(found[2]) > 14 or int(found[3]) > 59:
        raise _Dropped(f"UTC offset {_quoted(text)} is not one")
    sign = -1 if found[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(found[2]), minutes=int(found[3])))


def _offset_text(moment: datetime) -> str | None:
    offset = moment.utcoffset()
    if offset is None:
        return None
    minutes = int(offset.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _in_range(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        raise _Dropped(f"{utc.isoformat()} outside [{EARLIEST.year}, {LATEST.year})")
    return utc


_ISO_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?"
)


def _iso_time(text: str) -> tuple[datetime, str | None]:
    """An ISO 8601 time with an offset (naive: UTC), in UTC, and the offset it gave."""
    found = _ISO_TIME.fullmatch(text.strip())
    if not found:
        raise _Dropped(f"{_quoted(text)} is not a time")
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    zone = utc_offset(found[8]) if found[8] else UTC
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise _Dropped(f"{_quoted(text)} is not a time: {exc}") from exc
    moment += timedelta(seconds=float(found[7] or 0))
    given = _offset_text(moment) if found[8] and found[8] != "Z" else None
    return _in_range(moment), given


_ISO6709 = re.compile(r"([+-][\d.]+)([+-][\d.]+)([+-][\d.]+)?(?:CRS[^/]*)?/?")


def _sexagesimal(part: str, degree_digits: int) -> float:
    """An ISO 6709 coordinate: ±DD.d, ±DDMM.m or ±DDMMSS.s (a longitude: DDD). Any other count
    of whole digits is read as degrees (a writer's "+200.0" is a bad latitude, not minutes)."""
    sign = -1.0 if part[0] == "-" else 1.0
    whole, _, fraction = part[1:].partition(".")
    value = float(f"{whole}.{fraction or 0}")
    extra = len(whole) - degree_digits
    if extra == 2:  # DDMM.m
        value = (
            float(whole[:degree_digits]) + float(f"{whole[degree_digits:]}.{fraction or 0}") / 60
        )
    elif extra == 4:  # DDMMSS.s
        degrees, minutes = float(whole[:degree_digits]), float(whole[degree_digits:-2])
        value = degrees + minutes / 60 + float(f"{whole[-2:]}.{fraction or 0}") / 3600
    return sign * value


def _place(latitude: float, longitude: float) -> tuple[float, float]:
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise _Dropped(f"latitude {latitude} out of range [-90, 90]")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise _Dropped(f"longitude {longitude} out of range [-180, 180]")
    return latitude, longitude


def _altitude(metres: float) -> float:
    low, high = ALTITUDE_M
    if not (math.isfinite(metres) and low <= metres <= high):
        raise _Dropped(f"altitude {metres} m out of range [{low:g}, {high:g}]")
    return metres


def iso6709(text: str) -> tuple[float, float, float | None]:
    """Latitude, longitude and altitude (None: not given) of an ISO 6709 point string, e.g.
    ``+48.8584+002.2945+035.000/``."""
    found = _ISO6709.fullmatch(text.strip())
    if not found:
        raise _Dropped(f"{_quoted(text)} is not an ISO 6709 point")
    lat_part, lon_part, alt_part = found.groups()
    latitude, longitude = _place(_sexagesimal(lat_part, 2), _sexagesimal(lon_part, 3))
    return latitude, longitude, float(alt_part) if alt_part else None


class _Reading:
    """The fields read so far and the notes on what was dropped."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.notes: list[str] = []

    def first(
        self, field: str, candidates: list[tuple[str, Any]], parse: Callable[[Any], Any]
    ) -> None:
        """Set ``field`` from the first candidate ``(name, raw value)`` that parses; note
        each bad one. ``parse`` returns the field's value, or a dict of fields."""
        for name, raw in candidates:
            if raw is None:
                continue
            try:
                parsed = parse(raw)
            except _Dropped as exc:
                self.notes.append(f"{name} dropped: {exc}")
                continue
            except (TypeError, ValueError, ArithmeticError) as exc:  # a malformed EXIF value
                self.notes.append(f"{name} dropped: {type(exc).__name__}: {_quoted(exc)}")
                continue
            if parsed is None:
                continue
            self.values |= parsed if isinstance(parsed, dict) else {field: parsed}
            return

    def fields(self) -> CaptureFields:
        return CaptureFields(**self.values, metadata_notes=self.notes)


def _time_fields(parsed: tuple[datetime, str | None]) -> dict[str, Any]:
    return {"captured_at": parsed[0], "capture_utc_offset": parsed[1]}


def _point_fields(text: str) -> dict[str, Any]:
    latitude, longitude, altitude = iso6709(text)
    fields: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if altitude is not None:
        fields["altitude"] = _altitude(altitude)
    return fields


_VIDEO_CAMERA = {
    "camera_make": ("com.apple.quicktime.make", "com.android.manufacturer", "make"),
    "camera_model": ("com.apple.quicktime.model", "com.android.model", "model"),
    "camera_software": ("com.apple.quicktime.software", "com.android.version"),
}


def video_capture(*tag_sets: Mapping[str, Any]) -> CaptureFields:
    """A video's capture metadata from ffprobe's tags (the format's, then the video stream's:
    the first set that has a key wins)."""
    tags: dict[str, Any] = {}
    for tag_set in reversed(tag_sets):
        tags |= {str(key).lower(): value for key, value in tag_set.items()}

    def named(*keys: str) -> list[tuple[str, Any]]:
        return [(key, tags.get(key)) for key in keys]

    reading = _Reading()
    reading.first(
        "captured_at",
        named("com.apple.quicktime.creationdate", "creation_time"),
        lambda text: _time_fields(_iso_time(str(text))),
    )
    reading.first(
        "latitude",
        named("com.apple.quicktime.location.iso6709", "location", "location-eng"),
        lambda text: _point_fields(str(text)),
    )
    for field, keys in _VIDEO_CAMERA.items():
        reading.first(field, named(*keys), _text)
    return reading.fields()


# EXIF tags (https://exiftool.org/TagNames/EXIF.html, GPS.html): IFD0, the Exif and GPS IFDs.
_MAKE, _MODEL, _SOFTWARE = 0x010F, 0x0110, 0x0131
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_LAT_REF, _LAT, _LON_REF, _LON, _ALT_REF, _ALT = 1, 2, 3, 4, 5, 6
_GPS_TIME, _GPS_DATE = 7, 29


def _exif_text(value: Any) -> str:
    """An EXIF string as the camera wrote it: Pillow decodes ASCII tags as Latin-1, so UTF-8
    (which many cameras write) is read back from the bytes, and what is neither is marked."""
    raw = value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
    return raw.decode("utf-8", "replace")


def _exif_time(local: Any, offset: Any = None, subsec: Any = None) -> dict[str, Any]:
    text = _exif_text(local).strip()
    try:
        moment = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")  # local: its zone is below
    except ValueError as exc:
        raise _Dropped(f"{_quoted(text)} is not an EXIF time") from exc
    if subsec is not None and _exif_text(subsec).strip().isdigit():
        moment += timedelta(seconds=float(f"0.{_exif_text(subsec).strip()}"))
    if offset is None:
        return _time_fields((_in_range(moment.replace(tzinfo=UTC)), None))
    local = moment.replace(tzinfo=utc_offset(_exif_text(offset)))
    return _time_fields((_in_range(local), _offset_text(local)))


def _degrees(dms: Any, ref: Any, negative: str) -> float:
    parts = [float(part) for part in dms]
    if len(parts) != 3:
        raise _Dropped(f"{_quoted(dms)} is not degrees, minutes, seconds")
    value = parts[0] + parts[1] / 60 + parts[2] / 3600
    return -value if _exif_text(ref).strip().upper() == negative else value


def _gps_fields(gps: Mapping[int, Any]) -> dict[str, Any] | None:
    if _LAT not in gps or _LON not in gps:
        return None
    latitude = _degrees(gps[_LAT], gps.get(_LAT_REF, "N"), "S")
    longitude = _degrees(gps[_LON], gps.get(_LON_REF, "E"), "W")
    latitude, longitude = _place(latitude, longitude)
    fields: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if _ALT in gps:
        below = gps.get(_ALT_REF) in (b"\x01", 1)
        metres = float(gps[_ALT])
        fields["altitude"] = _altitude(-metres if below else metres)
    return fields


def _gps_time(gps: Mapping[int, Any]) -> dict[str, Any] | None:
    if _GPS_DATE not in gps or _GPS_TIME not in gps:
        return None
    hours, minutes, seconds = (float(part) for part in gps[_GPS_TIME])
    day = datetime.strptime(_exif_text(gps[_GPS_DATE]).strip(), "%Y:%m:%d")
    moment = day.replace(tzinfo=UTC) + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return _time_fields((_in_range(moment), None))


def photo_capture(data: bytes) -> CaptureFields:
    """A photo's capture metadata from its EXIF (none: empty fields)."""
    # Here, not at the top: every function stores documents with these fields, only dedup
    # reads photos, and the others need not load Pillow on a cold start.
    from PIL import Image

    reading = _Reading()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            with Image.open(io.BytesIO(data)) as image:
                exif = image.getexif()
                taken, gps = exif.get_ifd(_EXIF_IFD), exif.get_ifd(_GPS_IFD)
        # Pillow's EXIF reader raises many kinds on malformed blocks; none may fail the photo
        # (its pixels are read elsewhere, and refused there if they are bad).
        except Exception as exc:
            return CaptureFields(metadata_notes=[f"EXIF unreadable: {type(exc).__name__}: {exc}"])
    reading.notes += [f"EXIF incomplete: {warning.message}" for warning in said]
    if _ORIGINAL in taken and _OFFSET_ORIGINAL in taken:
        reading.first(
            "captured_at",
            [("DateTimeOriginal", taken[_ORIGINAL])],
            lambda local: _exif_time(local, taken[_OFFSET_ORIGINAL], taken.get(_SUBSEC_ORIGINAL)),
        )
    if "captured_at" not in reading.values:
        reading.first("captured_at", [("GPS time", gps)], _gps_time)
    if "captured_at" not in reading.values and _ORIGINAL in taken and _OFFSET_ORIGINAL not in taken:
        reading.first("captured_at", [("DateTimeOriginal", taken[_ORIGINAL])], _exif_time)
        if "captured_at" in reading.values:
            reading.notes.append("DateTimeOriginal has no UTC offset: taken as UTC")
    reading.first("latitude", [("GPS", gps)], _gps_fields)
    for field, tag, name in (
        ("camera_make", _MAKE, "Make"),
        ("camera_model", _MODEL, "Model"),
        ("camera_software", _SOFTWARE, "Software"),
    ):
        reading.first(field, [(name, exif.get(tag))], lambda value: _text(_exif_text(value)))
    return reading.fields()
