"""The ffprobe and ffmpeg command lines, checked as argument lists: nothing runs ffmpeg."""

from __future__ import annotations

import pytest

from framesift.imagestats import GRAY_SIZE
from framesift.media.commands import (
    probe_command,
    sampling_command,
    select_expression,
    source_options,
    telemetry_command,
)
from framesift.media.segments import WHOLE
from framesift.media.tools import Ffmpeg
from framesift.messages import PLAIN_PICTURE, Picture, Segment, ToneMap
from framesift.sampling import DecodeMode, SamplingPolicy

TOOLS = Ffmpeg("ffmpeg", "ffprobe", cpus=2, reconnect_delay_max_s=30)
DEPLOYED = (4, 4)  # Cloud Functions' Ubuntu 22.04 image
SIGNED = "https://storage.googleapis.com/raw/cam/a.mp4?X-Goog-Signature=abc"
SMALL_PIPE = 7
DEFAULT = SamplingPolicy()  # one frame a second


def _sample(
    policy: SamplingPolicy = DEFAULT,
    segment: Segment = WHOLE,
    decode: DecodeMode = DecodeMode.ALL,
    url: str = "/videos/a.mp4",
    version: tuple[int, int] = DEPLOYED,
    max_pixels: int | None = None,
    tools: Ffmpeg = TOOLS,
    picture: Picture = PLAIN_PICTURE,
    origin_s: float = 0.0,
) -> list[str]:
    return sampling_command(
        url, policy, segment, decode, tools, version, max_pixels, SMALL_PIPE, picture, origin_s
    )


def _input_options(command: list[str]) -> list[str]:
    """The options before -i, and -i's URL."""
    return command[1 : command.index("-i") + 2]


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _filters(command: list[str]) -> list[str]:
    """The filter graph's filters in order, each without its link labels."""
    graph = _value(command, "-filter_complex")
    return [step.split("]", 1)[1].split("[", 1)[0] for step in graph.split(";")]


def test_the_frames_go_raw_to_stdout_and_small_to_the_second_pipe():
    command = _sample()
    assert command[0] == "ffmpeg"
    # One timeline in every segment, the first too: the file's, from its start (docs/footage.md).
    assert command[1:6] == ["-copyts", "-nostdin", "-start_at_zero", "-threads", "2"]
    assert _value(command, "-i") == "/videos/a.mp4"
    raw = command.index("pipe:1")
    assert command[raw - 4 : raw] == ["-f", "rawvideo", "-pix_fmt", "yuv420p"]
    small = command.index(f"pipe:{SMALL_PIPE}")
    assert command[small - 4 : small] == ["-f", "rawvideo", "-pix_fmt", "yuv420p"]
    assert _value(command, "-filter_complex").startswith("[0:v:0]select=")
    assert _filters(command)[1:] == [
        "crop=trunc(iw/2)*2:trunc(ih/2)*2",
        "showinfo=checksum=0",  # checksums would read every pixel twice on the main thread
        "split=2",
        f"scale={GRAY_SIZE}:{GRAY_SIZE}:flags=area",
    ]
    assert command[-4:-2] == ["-loglevel", "level+info"]


def test_every_n_seconds_keeps_the_first_frame_of_each_window():
    command = _sample(SamplingPolicy(every_seconds=2.5))
    assert _filters(command)[0] == (
        r"select=isnan(prev_selected_t)+gt(floor(t/2.5)\,floor(prev_selected_t/2.5))"
    )
    assert "-skip_frame" not in command


def test_every_n_seconds_counts_its_windows_from_a_late_streams_first_frame():
    """A stream starting at 1.47 s (MPEG-TS) keeps its first frame and one per second after it:
    windows from a microsecond before the first frame, so one on a window's start is in it."""
    command = _sample(SamplingPolicy(every_seconds=1.0), origin_s=1.47)
    assert _filters(command)[0] == (
        r"select=isnan(prev_selected_t)+gt(floor((t-1.469999)/1.0)\,"
        r"floor((prev_selected_t-1.469999)/1.0))"
    )


def test_every_n_seconds_can_decode_reference_frames_only():
    command = _sample(SamplingPolicy(every_seconds=2.5), decode=DecodeMode.REFERENCE)
    assert _value(command, "-skip_frame") == "noref"
    assert _value(command, "-threads") == "8"  # four per CPU when frames are skipped


def test_every_n_frames_counts_from_the_segments_first_frame():
    policy = SamplingPolicy(mode="every_frames", every_frames=7)
    assert _filters(_sample(policy))[0] == r"select=not(mod(n+0\,7))"
    later = Segment(start_s=9.98, end_s=19.98, first_frame=300)
    assert select_expression(policy, later) == "gte(t,9.98)*lt(t,19.98)*(not(mod(n+300,7)))"


def test_scene_changes_keep_the_first_frame_and_each_change_over_the_threshold():
    policy = SamplingPolicy(mode="scene", scene_threshold=0.4)
    assert select_expression(policy, Segment()) == "isnan(prev_selected_t)+gt(scene,0.4)"


def test_keyframes_only_skips_every_other_frame_in_the_decoder():
    command = _sample(SamplingPolicy(keyframes_only=True), decode=DecodeMode.KEYFRAMES)
    assert _value(command, "-skip_frame") == "nokey"
    assert _value(command, "-threads") == "8"


def test_a_segment_seeks_its_input_keeps_timestamps_and_bounds_the_selection():
    command = _sample(segment=Segment(start_s=10.0, end_s=20.0))
    assert _input_options(command) == [
        "-copyts",
        "-nostdin",
        "-ss",
        "10.0",
        "-start_at_zero",
        "-t",
        "11.0",  # a second past the end: the select bounds cut
        "-threads",
        "2",
        "-i",
        "/videos/a.mp4",
    ]
    assert _filters(command)[0].startswith(r"select=gte(t\,10.0)*lt(t\,20.0)*(")


def test_sdr_progressive_video_gets_no_filter_but_the_selection_and_its_plumbing():
    assert [f.split("=")[0] for f in _filters(_sample())] == [
        "select",
        "crop",
        "showinfo",
        "split",
        "scale",
    ]


def test_the_default_stream_is_read_when_it_is_not_the_first():
    command = _sample(picture=Picture(stream=1))
    assert _value(command, "-filter_complex").startswith("[0:v:1]select=")


def test_interlaced_video_is_deinterlaced_frame_for_frame_before_the_selection():
    filters = _filters(_sample(picture=Picture(deinterlace=True)))
    # bwdif reads the frames around each, so it sees them all; one frame out per frame in.
    assert filters[0] == "bwdif=deint=interlaced:mode=send_frame:parity=auto"
    assert filters[1].startswith("select=")


@pytest.mark.parametrize(
    ("turn", "turned"),
    [(90, ["transpose=dir=clock"]), (180, ["hflip", "vflip"]), (270, ["transpose=dir=cclock"])],
)
def test_an_interlaced_rotated_video_is_turned_after_deinterlacing_not_before(turn, turned):
    command = _sample(picture=Picture(deinterlace=True, turn=turn))
    filters = _filters(command)
    # Autorotation would turn the frames before bwdif, which finds the fields in rows.
    assert command.index("-noautorotate") < command.index("-i")
    assert filters[0].startswith("bwdif=") and filters[1].startswith("select=")
    assert filters[2 : 2 + len(turned)] == turned
    assert filters[2 + len(turned)].startswith("crop=")  # even sides of the turned picture


def test_other_videos_keep_ffmpegs_autorotation():
    assert "-noautorotate" not in _sample(picture=Picture(deinterlace=True))
    assert "-noautorotate" not in _sample()


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_hdr_is_tone_mapped_to_bt709_after_the_selection(transfer):
    source = ToneMap(transfer=transfer, primaries="bt2020", matrix="bt2020nc")
    filters = _filters(_sample(picture=Picture(tone_map=source)))
    assert filters[0].startswith("select=")  # only the kept frames are tone-mapped
    assert filters[1:7] == [
        f"zscale=min=bt2020nc:npl=100:pin=bt2020:t=linear:tin={transfer}",
        "format=gbrpf32le",
        "zscale=p=bt709",
        "tonemap=desat=0:tonemap=mobius",
        "zscale=m=bt709:r=tv:t=bt709",
        "format=yuv420p",
    ]
    assert filters[7].startswith("crop=")


def test_the_first_segment_does_not_seek_and_the_last_has_no_end():
    assert "-ss" not in _sample(segment=Segment(start_s=0.0, end_s=5.0))
    last = _sample(segment=Segment(start_s=12.5))
    assert _value(last, "-ss") == "12.5"
    assert "-t" not in _input_options(last)
    assert select_expression(SamplingPolicy(), Segment(start_s=12.5)).startswith("gte(t,12.5)*(")


@pytest.mark.parametrize(
    ("cpus", "decode", "threads"),
    [(2, DecodeMode.ALL, "2"), (2, DecodeMode.REFERENCE, "8"), (8, DecodeMode.REFERENCE, "16")],
)
def test_the_decoder_threads_follow_the_cpus_and_the_decode_mode(cpus, decode, threads):
    command = _sample(decode=decode, tools=Ffmpeg(cpus=cpus))
    assert _value(command, "-threads") == threads


def test_max_pixels_is_given_when_asked_and_kept_within_the_options_range():
    assert "-max_pixels" not in _sample()
    assert _value(_sample(max_pixels=40_000_000), "-max_pixels") == "40000000"
    assert _value(_sample(max_pixels=2**40), "-max_pixels") == str(2**31 - 1)


@pytest.mark.parametrize(
    ("version", "outputs_passthrough", "vsync"),
    [((4, 4), False, True), ((5, 0), False, True), ((5, 1), True, False)],
)
def test_every_frame_passes_through_by_the_option_the_version_takes(
    version, outputs_passthrough, vsync
):
    command = _sample(version=version)
    assert (command.count("-fps_mode") == 2) is outputs_passthrough
    assert (command[-2:] == ["-vsync", "passthrough"]) is vsync


def test_a_local_file_is_read_without_network_options():
    assert source_options("/videos/a.mp4", DEPLOYED, 30) == {}
    assert "-reconnect" not in _sample()


def test_over_http_ffmpeg_4_2_reconnects_only_after_a_dropped_connection():
    assert source_options(SIGNED, (4, 2), 30) == {
        "reconnect": 1,
        "reconnect_delay_max": 30,
        "rw_timeout": 30_000_000,
    }


@pytest.mark.parametrize("version", [(4, 3), (4, 4), (7, 1)])
def test_over_http_ffmpeg_4_3_on_also_reconnects_after_errors_and_retryable_statuses(version):
    options = source_options(SIGNED, version, 5)
    assert options["reconnect_delay_max"] == 5
    assert options["reconnect_on_network_error"] == 1
    assert options["reconnect_on_http_error"] == "408,429,5xx"
    command = _sample(url=SIGNED, version=version)
    assert _value(command, "-reconnect_on_http_error") == "408,429,5xx"
    assert _value(command, "-i") == SIGNED


def test_the_probe_asks_for_format_and_streams_as_json():
    assert probe_command("/videos/a.mp4", TOOLS, DEPLOYED) == [
        "ffprobe",
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        "-hide_banner",
        "/videos/a.mp4",
    ]


def test_the_probe_reconnects_over_http_as_the_sampling_does():
    command = probe_command(SIGNED, TOOLS, (4, 2))
    assert command[6:] == [
        "-reconnect",
        "1",
        "-reconnect_delay_max",
        "30",
        "-rw_timeout",
        "30000000",
        SIGNED,
    ]


def test_the_telemetry_track_is_read_with_its_times_in_one_probe_that_reconnects_too():
    command = telemetry_command(SIGNED, 3, TOOLS, (4, 2))

    def after(option: str) -> str:
        return command[command.index(option) + 1]

    assert command[0] == "ffprobe" and command[-1] == SIGNED
    assert (after("-select_streams"), after("-of"), after("-reconnect")) == ("3", "json", "1")
    # The payloads' bytes and times, and the file's start their times count from.
    assert "-show_data" in command
    assert after("-show_entries") == "packet=pts_time,duration_time,data:format=start_time"
