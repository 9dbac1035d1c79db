"""ffmpeg reading a video over HTTP, as deployed (a signed Cloud Storage URL), from a server that
fails the way networks and servers do. A dropped connection is resumed where it stopped; a
server or network that stays down is a transient failure (Pub/Sub redelivers), never the video
marked unreadable; an object that is gone is a permanent one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from framesift import media as ff
from framesift.errors import SamplingFailed, SourceUnavailable, UnreadableVideo
from framesift.sampling import SamplingPolicy
from tests.support.flakyhttp import Faults, serve

POLICY = SamplingPolicy()


@pytest.fixture
def tools(ffmpeg_tools: ff.Ffmpeg) -> ff.Ffmpeg:
    """The ffmpeg under test, giving up reconnecting after a second, not half a minute."""
    return replace(ffmpeg_tools, reconnect_delay_max_s=1)


def _frames(url: str, tools: ff.Ffmpeg) -> list[tuple[int, bytes]]:
    return [(i.timestamp_ms, i.jpeg) for i in ff.Sampling(url, POLICY, 90, tools=tools).images()]


def test_a_connection_cut_mid_video_is_resumed_where_it_stopped(tools, media):
    clip = media["clip_5s_25fps"]
    size = clip.stat().st_size
    with serve(clip, Faults(cut_after=size // 3)) as server:
        frames = _frames(server.url, tools)
        assert server.faults.cuts == 0  # the cut happened
        assert server.faults.requests >= 2  # and ffmpeg came back for the rest

    assert frames == _frames(str(clip), tools)


def test_a_server_that_stays_down_is_transient_not_an_unreadable_video(tools, media):
    with serve(media["clip_5s_25fps"], Faults(status=503, failures=None)) as server:
        with pytest.raises(SourceUnavailable, match="503") as probed:
            ff.probe(server.url, tools)
        sampling = ff.Sampling(server.url, POLICY, 90, tools=tools)
        with pytest.raises(SourceUnavailable, match="503") as sampled:
            list(sampling.images())
    for failure in (probed.value, sampled.value):
        assert "127.0.0.1" not in str(failure)  # a signed URL's query is a credential


def test_ffmpeg_itself_retries_a_server_error_from_4_3_on(tools, media):
    """ffmpeg 4.3 added reconnecting on an HTTP error; before it, the failure is transient and
    the message's redelivery is the retry."""
    with serve(media["clip_5s_25fps"], Faults(status=503, failures=1)) as server:
        if tools.version >= (4, 3):
            assert ff.probe(server.url, tools).duration_s == pytest.approx(5.0)
        else:
            with pytest.raises(SourceUnavailable):
                ff.probe(server.url, tools)


def test_nothing_listening_is_transient(tools, media):
    with serve(media["clip_5s_25fps"], Faults()) as server:
        url = server.url
    with pytest.raises(SourceUnavailable, match="refused"):
        ff.probe(url, tools)


@pytest.mark.parametrize("status", [404, 410])
def test_an_object_that_is_gone_is_permanent(tools, media, status):
    with serve(media["clip_5s_25fps"], Faults(status=status, failures=None)) as server:
        with pytest.raises(UnreadableVideo, match=str(status)):
            ff.probe(server.url, tools)
        with pytest.raises(SamplingFailed, match=str(status)):
            list(ff.Sampling(server.url, POLICY, 90, tools=tools).images())
