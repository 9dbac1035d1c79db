"""Reading ffprobe's JSON (the shapes ffprobe 4.x and 5.x write) and deciding the picture's
filters from it: nothing runs ffprobe (tests/integration/test_footage.py runs the real files)."""

from __future__ import annotations

from typing import Any

import pytest

from framesift.errors import UnreadableVideo
from framesift.media.picture import plan_picture
from framesift.media.probe import read_probe
from framesift.media.tools import Ffmpeg, listed_filters
from framesift.messages import Picture, ToneMap

MOV = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "start_time": "0.000000", "duration": "1.5"}


def _video(index: int = 0, default: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "index": index,
        "codec_type": "video",
        "codec_name": "h264",
        "width": 320,
        "height": 240,
        "avg_frame_rate": "25/1",
        "start_time": "0.000000",
        "disposition": {"default": default, "attached_pic": 0},
        **fields,
    }


def _probe(*streams: dict[str, Any], fmt: dict[str, Any] = MOV) -> Any:
    return read_probe({"streams": list(streams), "format": fmt})


def _display_matrix(rotation: int) -> list[dict[str, Any]]:
    return [{"side_data_type": "Display Matrix", "displaymatrix": "...", "rotation": rotation}]


@pytest.mark.parametrize(
    ("stream", "rotation", "size"),
    [
        # ffprobe 5.x: side data only, counter-clockwise (a phone's 90° clockwise is -90).
        ({"side_data_list": _display_matrix(-90)}, 90, (240, 320)),
        ({"side_data_list": _display_matrix(90)}, 270, (240, 320)),
        ({"side_data_list": _display_matrix(180)}, 180, (320, 240)),
        ({"side_data_list": _display_matrix(-180)}, 180, (320, 240)),
        # ffmpeg 4.x (Cloud Functions' 4.4): also the tag, clockwise.
        ({"tags": {"rotate": "90"}}, 90, (240, 320)),
        ({"tags": {"rotate": "270"}}, 270, (240, 320)),
        ({"tags": {"rotate": "90"}, "side_data_list": _display_matrix(-90)}, 90, (240, 320)),
        ({}, 0, (320, 240)),
    ],
)
def test_the_size_is_as_displayed_and_the_rotation_clockwise(stream, rotation, size):
    probe = _probe(_video(**stream))
    assert (probe.rotation, (probe.width, probe.height)) == (rotation, size)


def test_the_default_stream_is_chosen_and_named_by_index_and_position():
    cover = _video(index=1, default=0, disposition={"default": 0, "attached_pic": 1})
    audio = {"index": 0, "codec_type": "audio", "disposition": {"default": 1}}
    probe = _probe(audio, cover, _video(index=2, default=0), _video(index=3, default=1, width=160))
    # ffmpeg's 0:v:N counts every video stream, a cover picture too.
    assert (probe.width, probe.stream_index, probe.stream_position) == (160, 3, 2)
    assert _probe(_video(index=0, default=0), _video(index=1, default=0)).stream_index == 0


def test_timestamps_count_from_the_video_streams_first_frame_on_the_files_timeline():
    late = _video(start_time="1.470000")
    # An MPEG-TS starting at 1.47 s: its video's first frame is the file's start.
    assert _probe(late, fmt={**MOV, "start_time": "1.470000"}).start_time_s == 0.0
    # Audio from 1.4 s, video from 1.47 s: frames count from the video's first.
    assert _probe(late, fmt={**MOV, "start_time": "1.400000"}).start_time_s == pytest.approx(0.07)
    assert _probe(_video(start_time=None), fmt={**MOV, "start_time": "0.5"}).start_time_s == 0.0


def test_no_video_stream_is_a_clear_error():
    with pytest.raises(UnreadableVideo, match="no video stream"):
        _probe({"index": 0, "codec_type": "audio"})


class _Filters(Ffmpeg):
    """An ffmpeg known to have ``filters``, without running it."""

    def __init__(self, filters: frozenset[str]) -> None:
        super().__init__()
        self.__dict__["filters"] = filters  # what the cached property would have read


HDR = {"color_transfer": "smpte2084", "color_primaries": "bt2020", "color_space": "bt2020nc"}
WITH_ZSCALE = _Filters(frozenset({"zscale", "tonemap", "bwdif"}))


def test_sdr_progressive_video_gets_no_filter():
    colour = {"color_transfer": "bt709", "field_order": "progressive"}
    plan = plan_picture(_probe(_video(**colour)), WITH_ZSCALE)
    assert (plan.picture, plan.tone_mapped, plan.tone_map_note) == (Picture(), None, None)


@pytest.mark.parametrize("order", ["tt", "bb", "tb", "bt"])
def test_interlaced_video_is_deinterlaced(order):
    assert plan_picture(_probe(_video(field_order=order)), WITH_ZSCALE).picture.deinterlace
    assert not plan_picture(_probe(_video(field_order="unknown")), WITH_ZSCALE).picture.deinterlace


def test_only_an_interlaced_video_is_turned_by_the_filters():
    portrait = {"side_data_list": _display_matrix(-90)}
    interlaced = plan_picture(_probe(_video(field_order="tt", **portrait)), WITH_ZSCALE)
    progressive = plan_picture(_probe(_video(field_order="progressive", **portrait)), WITH_ZSCALE)
    assert (interlaced.picture.turn, progressive.picture.turn) == (90, 0)


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_pq_and_hlg_are_tone_mapped_from_their_probed_colour(transfer):
    plan = plan_picture(_probe(_video(**{**HDR, "color_transfer": transfer})), WITH_ZSCALE)
    assert plan.picture.tone_map == ToneMap(
        transfer=transfer, primaries="bt2020", matrix="bt2020nc"
    )
    assert (plan.tone_mapped, plan.tone_map_note) == (True, None)


def test_without_zscale_hdr_is_sampled_as_it_is_and_the_plan_says_why():
    plan = plan_picture(_probe(_video(**HDR)), _Filters(frozenset({"tonemap", "bwdif"})))
    assert (plan.picture.tone_map, plan.tone_mapped) == (None, False)
    assert "no zscale filter" in (plan.tone_map_note or "")


def test_the_filter_list_is_read_from_both_builds_tables():
    said = """Filters:
  T.. = Timeline support
  ... = Generic
 ------
 TS. bwdif             V->V       Deinterlace the input image.
 ..C zscale            V->V       Apply resizing, colorspace and bit depth conversion.
 ... abuffer           |->A       Buffer audio frames.
 ... showinfo          V->V       Show textual information for each video frame.
"""
    assert listed_filters(said) == {"bwdif", "zscale", "abuffer", "showinfo"}
