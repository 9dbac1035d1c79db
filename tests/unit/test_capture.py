"""Capture metadata parsing (framesift.capture): the forms devices write, and bad values dropped
one by one with a note (the generated files' cases are in tests/integration/test_footage.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from framesift.capture import CaptureFields, iso6709, photo_capture, video_capture

PARIS = datetime(2024, 5, 4, 12, 3, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("+48.8584+002.2945+035.000/", (48.8584, 2.2945, 35.0)),
        ("+48.8584+002.2945/", (48.8584, 2.2945, None)),
        ("-33.8568+151.2153-002.5/", (-33.8568, 151.2153, -2.5)),
        ("+35.0000-118.0000+010.000CRSWGS_84/", (35.0, -118.0, 10.0)),
        ("+4851.504+00217.670/", (48.8584, 2.29450, None)),  # degrees and minutes
        ("+485130.24+0021740.2/", (48.858400, 2.294500, None)),  # degrees, minutes, seconds
    ],
)
def test_iso6709_points(text, point):
    assert iso6709(text) == pytest.approx(point, abs=1e-5)


def test_an_iphones_tags_give_time_with_its_offset_place_and_camera():
    capture = video_capture(
        {
            "creation_time": "2024-05-04T12:03:22.000000Z",
            "com.apple.quicktime.creationdate": "2024-05-04T14:03:22+0200",
            "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 15 Pro",
            "com.apple.quicktime.software": "17.4.1",
        }
    )
    assert capture == CaptureFields(
        captured_at=PARIS,
        capture_utc_offset="+02:00",
        latitude=48.8584,
        longitude=2.2945,
        altitude=35.0,
        camera_make="Apple",
        camera_model="iPhone 15 Pro",
        camera_software="17.4.1",
    )


def test_android_keys_and_the_stream_tags_count_when_the_format_has_none():
    capture = video_capture(
        {"com.android.manufacturer": "Google", "com.android.model": "Pixel 9"},
        {"creation_time": "2024-05-04T12:03:22.000000Z", "location": "+47.4559-122.1847/"},
    )
    assert (capture.camera_make, capture.camera_model, capture.captured_at) == (
        "Google",
        "Pixel 9",
        PARIS,
    )
    assert (capture.latitude, capture.longitude, capture.capture_utc_offset) == (
        47.4559,
        -122.1847,
        None,
    )


def test_a_bad_value_falls_back_to_the_next_source_and_is_noted():
    capture = video_capture(
        {
            "com.apple.quicktime.creationdate": "yesterday",
            "creation_time": "2024-05-04T12:03:22.000000Z",
        }
    )
    assert capture.captured_at == PARIS
    assert capture.metadata_notes == [
        "com.apple.quicktime.creationdate dropped: 'yesterday' is not a time"
    ]


@pytest.mark.parametrize(
    ("tags", "note"),
    [
        ({"creation_time": "1904-01-01T00:00:00.000000Z"}, "outside [1990, 2100)"),
        ({"creation_time": "2024-02-30T00:00:00Z"}, "day is out of range for month"),
        ({"com.apple.quicktime.creationdate": "2024-05-04T14:03:22+2500"}, "UTC offset"),
        ({"location": "+48.8584+200.0000/"}, "longitude 200.0 out of range"),
        ({"location": "somewhere"}, "is not an ISO 6709 point"),
        ({"location": "+48.8584+002.2945+999999.0/"}, "altitude 999999.0 m out of range"),
        ({"make": "x" * 257}, "257 characters, over 256"),
    ],
)
def test_bad_video_values_are_dropped_with_a_note(tags, note):
    capture = video_capture(tags)
    assert capture.model_dump(exclude={"metadata_notes"}) == CaptureFields().model_dump(
        exclude={"metadata_notes"}
    )
    [said] = capture.metadata_notes
    assert note in said and len(said) < 200


def test_a_frame_is_captured_at_its_videos_time_plus_its_timestamp():
    video = CaptureFields(captured_at=PARIS, latitude=1.0)
    assert video.at(1500) == CaptureFields(
        captured_at=PARIS + timedelta(milliseconds=1500), latitude=1.0
    )
    assert CaptureFields().at(1500) == CaptureFields()


def _jpeg(exif: Image.Exif) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _gps(exif: Image.Exif, lat: str, lon: str, below: bool) -> None:
    gps = exif.get_ifd(0x8825)
    gps[1], gps[3] = lat, lon
    gps[2] = (IFDRational(33), IFDRational(51), IFDRational(2448, 100))
    gps[4] = (IFDRational(151), IFDRational(12), IFDRational(5508, 100))
    gps[5] = b"\x01" if below else b"\x00"
    gps[6] = IFDRational(25, 10)


def test_a_photos_southern_western_position_below_sea_level():
    exif = Image.Exif()
    _gps(exif, "S", "W", below=True)
    capture = photo_capture(_jpeg(exif))
    assert (capture.latitude, capture.longitude, capture.altitude) == pytest.approx(
        (-33.8568, -151.2153, -2.5), abs=1e-6
    )


def test_a_photo_without_an_offset_uses_the_gps_clock_then_its_local_time_noted():
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:05:04 14:03:22"
    gps = exif.get_ifd(0x8825)
    gps[29] = "2024:05:04"
    gps[7] = (IFDRational(12), IFDRational(3), IFDRational(22))
    assert photo_capture(_jpeg(exif)).captured_at == PARIS  # GPS time is UTC

    del exif.get_ifd(0x8825)[29]
    local = photo_capture(_jpeg(exif))
    assert (local.captured_at, local.capture_utc_offset) == (PARIS + timedelta(hours=2), None)
    assert local.metadata_notes == ["DateTimeOriginal has no UTC offset: taken as UTC"]


def test_a_photos_bad_exif_values_are_dropped_one_by_one():
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = b"EOS \xff\xfe"  # not UTF-8
    taken = exif.get_ifd(0x8769)
    taken[0x9003], taken[0x9011] = "0000:00:00 00:00:00", "+02:00"  # a camera never set
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (IFDRational(200), IFDRational(0), IFDRational(0))
    gps[3], gps[4] = "E", (IFDRational(2), IFDRational(0), IFDRational(0))
    capture = photo_capture(_jpeg(exif))

    assert capture.camera_make == "Canon"
    assert (capture.camera_model, capture.captured_at, capture.latitude) == (None, None, None)
    assert [note.split(" dropped")[0] for note in capture.metadata_notes] == [
        "DateTimeOriginal",
        "GPS",
        "Model",
    ]


def test_a_picture_without_exif_has_no_capture_fields_and_no_notes():
    assert photo_capture(_jpeg(Image.Exif())) == CaptureFields()


def test_bytes_that_are_no_image_give_a_note_not_an_error():
    assert photo_capture(b"not a picture").metadata_notes[0].startswith("EXIF unreadable")
