"""What the sampler does to a video's frames so each is what a person sees, decided from its
probe and from the filters the ffmpeg at hand has (docs/footage.md)."""

from __future__ import annotations

from dataclasses import dataclass

from framesift.media.probe import VideoProbe
from framesift.media.tools import Ffmpeg
from framesift.messages import Picture, ToneMap

# zscale (libzimg) is the only filter in ffmpeg 4.2 to 5.1 that turns PQ or HLG into the linear
# light ``tonemap`` needs; ``colorspace`` knows no PQ or HLG transfer (docs/footage.md, (b)).
TONE_MAP_FILTER = "zscale"


@dataclass(frozen=True)
class PicturePlan:
    picture: Picture
    tone_mapped: bool | None  # None: the source is not HDR
    tone_map_note: str | None = None  # why an HDR source is sampled without tone mapping


def plan_picture(probe: VideoProbe, tools: Ffmpeg) -> PicturePlan:
    """The filters for ``probe``'s video: deinterlaced when its field order says interlaced (and
    then turned upright after it), tone-mapped to BT.709 when it is PQ or HLG and this ffmpeg
    has zscale (else sampled as it is, and the plan says why), always from the stream a player
    shows."""
    tone_map = None
    tone_mapped = None
    note = None
    if probe.hdr:
        if TONE_MAP_FILTER in tools.filters:
            tone_map = ToneMap(
                transfer=probe.transfer or "",
                # PQ and HLG are BT.2100's, with BT.2020 primaries and matrix, when untagged.
                primaries=probe.primaries or "bt2020",
                matrix=probe.matrix or "bt2020nc",
            )
            tone_mapped = True
        else:
            tone_mapped = False
            note = (
                f"{probe.transfer} video sampled without tone mapping: {tools.ffmpeg} has no "
                f"{TONE_MAP_FILTER} filter (ffmpeg built without libzimg)"
            )
    picture = Picture(
        stream=probe.stream_position,
        deinterlace=probe.interlaced,
        tone_map=tone_map,
        # ffmpeg's autorotation turns frames before the filters, where bwdif would then find
        # the fields in columns: an interlaced video is turned after deinterlacing instead. The
        # others keep autorotation, which the sampler's early start (begun before the probe, so
        # with no filter) already has right for a portrait video.
        turn=probe.rotation if probe.interlaced else 0,
    )
    return PicturePlan(picture, tone_mapped, note)
