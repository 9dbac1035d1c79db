"""Reading ffmpeg's stderr: the frame reports, and the messages sorted into failure kinds."""

from __future__ import annotations

import pytest

from framesift.errors import SamplingFailed, SourceUnavailable, UnreadableVideo
from framesift.media.failures import GONE, Diagnostics, scrub, source_failure
from framesift.media.frames import _SHOWINFO


@pytest.mark.parametrize(
    "line",
    [
        "[Parsed_showinfo_2 @ 0x55d] [info] n:   3 pts:  38400 pts_time:3       pos:    12345 "
        "fmt:yuv420p sar:1/1 s:320x240 i:P iskey:0 type:P checksum:1234ABCD",
        # A decoder thread's error swallowed showinfo's prefix and shares its line.
        "[h264 @ 0x1] [error] Invalid NAL unit size (1 > 2).n:   3 pts:  38400 pts_time:3       "
        "pos:    12345 fmt:yuv420p sar:1/1 s:320x240 i:P iskey:0 type:P ",
    ],
)
def test_frame_reports_are_read_even_when_ffmpeg_threads_interleave(line):
    match = _SHOWINFO.search(line)
    assert match is not None
    assert (match[1], match[2], match[3]) == ("3", "320", "240")


def test_urls_and_queries_are_scrubbed_from_messages():
    said = "[https @ 0x5] Opening 'https://h/o/a.mp4?X-Goog-Signature=s' for reading ?a=b"
    assert scrub(said) == "[https @ 0x5] Opening '<input>' for reading ?<query>"


def test_a_404_is_the_video_gone_whatever_else_was_said():
    lines = ["[https @ 0x1] [error] HTTP error 404 Not Found", "Server returned 404 Not Found"]
    failure = source_failure(lines, UnreadableVideo)
    assert isinstance(failure, UnreadableVideo)
    assert str(failure) == f"{GONE}: HTTP error 404 Not Found"


def test_a_server_error_is_transient_and_reconnect_notes_are_left_out_when_others_say_more():
    lines = [
        "[https @ 0x1] [warning] Will reconnect at 100 in 1 second(s), error=Connection refused.",
        "[https @ 0x1] [error] HTTP error 503 Service Unavailable",
    ]
    failure = source_failure(lines, UnreadableVideo)
    assert isinstance(failure, SourceUnavailable)
    assert str(failure) == "could not read the video: HTTP error 503 Service Unavailable"
    assert source_failure(["[h264 @ 0x2] [error] Invalid NAL unit size"], UnreadableVideo) is None


def test_a_clean_run_is_no_failure_even_after_a_reconnect_that_worked():
    said = Diagnostics()
    said.hear("[https @ 0x1] [warning] Will reconnect at 100 in 0 second(s)")
    said.hear("[info] frame=  5 fps=0.0")
    assert list(said.source) and not said.errors
    assert said.failure(0) is None


def test_decode_errors_fail_the_run_by_component_without_addresses():
    said = Diagnostics()
    said.hear("[h264 @ 0x55d] [error] Invalid NAL unit size (1 > 2).")
    said.hear("[h264 @ 0x56e] [error] Invalid NAL unit size (1 > 2).")
    failure = said.failure(0)
    assert isinstance(failure, SamplingFailed)
    assert str(failure) == "decode errors: [h264] Invalid NAL unit size (1 > 2)."


def test_an_exit_status_fails_the_run_with_its_last_lines_and_a_source_trouble_is_transient():
    said = Diagnostics()
    said.hear("[info] Opening 'https://h/a.mp4?sig=s' for reading")
    said.hear("[fatal] Conversion failed!")
    assert str(said.failure(1)).startswith("ffmpeg exited with 1: ")
    assert "sig=s" not in str(said.failure(1))
    said.hear("[https @ 0x1] [error] Connection to tcp://h:443 failed: Connection refused")
    assert isinstance(said.failure(1), SourceUnavailable)


def test_a_video_gone_mid_run_fails_it_permanently():
    said = Diagnostics()
    said.hear("[https @ 0x1] [error] HTTP error 410 Gone")
    failure = said.failure(1)
    assert isinstance(failure, SamplingFailed)
    assert str(failure).startswith(GONE)
