"""Cutting a long video into segments that are each sampled by their own invocation."""

from __future__ import annotations

import math

from framesift.media.commands import window_origin
from framesift.media.probe import VideoProbe
from framesift.messages import Segment
from framesift.sampling import SamplingMode, SamplingPolicy

WHOLE = Segment()


def plan_segments(
    probe: VideoProbe, policy: SamplingPolicy, segment_seconds: float
) -> list[Segment]:
    """Cut a long video into segments whose boundaries keep every policy exact.

    For every-N-seconds the boundaries fall on window starts; for every-N-frames on multiples of
    N frames (half a frame early, so rounding never loses the boundary frame); a scene-change
    segment starts with a kept frame, as the video's first frame is.
    """
    duration = probe.duration_s
    if duration is None or duration <= segment_seconds:
        return [WHOLE]
    start = probe.start_time_s
    if policy.mode is SamplingMode.EVERY_FRAMES and probe.fps:
        frames = (
            max(1, round(segment_seconds * probe.fps / policy.every_frames)) * policy.every_frames
        )
        count = math.ceil(duration * probe.fps / frames)
        return [
            Segment(
                start_s=max(start + (k * frames - 0.5) / probe.fps, 0.0) if k else 0.0,
                end_s=start + ((k + 1) * frames - 0.5) / probe.fps if k + 1 < count else None,
                first_frame=k * frames,
            )
            for k in range(count)
        ]
    if policy.mode is SamplingMode.EVERY_SECONDS:
        step = max(1, round(segment_seconds / policy.every_seconds)) * policy.every_seconds
    else:
        step = segment_seconds
    # Boundaries at multiples of step from the first frame, where the windows start too.
    origin = window_origin(start)
    cuts = [origin + k * step for k in range(1, math.ceil(duration / step))]
    bounds = [0.0, *cuts]
    return [Segment(start_s=lo, end_s=hi) for lo, hi in zip(bounds, [*cuts, None], strict=True)]
