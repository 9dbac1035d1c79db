"""ffmpeg plumbing: probe a video, plan its segments and stream out the frames a policy keeps.

ffmpeg reads the video itself from a URL or path, so the video is never copied whole into
memory or /tmp. By concern: :mod:`~framesift.media.probe` (ffprobe),
:mod:`~framesift.media.segments` (cutting a long video), :mod:`~framesift.media.picture` (the
filters that make each frame what a person sees), :mod:`~framesift.media.commands` (the
command lines, pure), :mod:`~framesift.media.tools` (the binaries and their version),
:mod:`~framesift.media.frames` (one run's frames, read from its pipes),
:mod:`~framesift.media.telemetry` (a GoPro's GPMF track, read out) and
:mod:`~framesift.media.failures` (what ffmpeg's messages say went wrong).
"""

from framesift.media.failures import GONE, scrub
from framesift.media.frames import SampledImage, Sampling
from framesift.media.picture import PicturePlan, plan_picture
from framesift.media.probe import VideoProbe, probe
from framesift.media.segments import WHOLE, plan_segments
from framesift.media.telemetry import telemetry_payloads
from framesift.media.tools import SYSTEM, Ffmpeg

__all__ = [
    "GONE",
    "SYSTEM",
    "WHOLE",
    "Ffmpeg",
    "PicturePlan",
    "SampledImage",
    "Sampling",
    "VideoProbe",
    "plan_picture",
    "plan_segments",
    "probe",
    "scrub",
    "telemetry_payloads",
]
