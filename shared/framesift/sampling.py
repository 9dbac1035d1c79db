"""Which frames of a video the sampler keeps: the sampling policy, the deployment's default
overridden per object by its ``framesift-*`` custom metadata."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framesift.errors import BadEvent


class SamplingMode(StrEnum):
    EVERY_SECONDS = "every_seconds"
    EVERY_FRAMES = "every_frames"
    SCENE = "scene"


class DecodeMode(StrEnum):
    """Which frames ffmpeg decodes to find the ones a policy keeps (``-skip_frame``)."""

    ALL = "all"
    # Reference frames only (noref): the frames others are predicted from, so every decoded
    # picture is whole; the non-reference B-frames between them are skipped.
    REFERENCE = "reference"
    KEYFRAMES = "keyframes"  # nokey


# Custom metadata on a raw object that overrides the deployment's sampling policy.
POLICY_METADATA = {
    "framesift-sampling": "mode",
    "framesift-every-seconds": "every_seconds",
    "framesift-every-frames": "every_frames",
    "framesift-scene-threshold": "scene_threshold",
    "framesift-keyframes-only": "keyframes_only",
}


class SamplingPolicy(BaseModel):
    """Which frames of a video are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: SamplingMode = SamplingMode.EVERY_SECONDS
    every_seconds: float = Field(default=1.0, gt=0, le=3600)
    every_frames: int = Field(default=30, ge=1, le=1_000_000)
    # ffmpeg's scene score, 0..1: the share of the picture that changed.
    scene_threshold: float = Field(default=0.3, gt=0, lt=1)
    # Decode keyframes only (-skip_frame nokey): far faster when the interval is >= the GOP.
    keyframes_only: bool = False

    def decode_mode(self, fps: float | None, reference_min_frames: float) -> DecodeMode:
        """What to decode. Keyframes when asked; reference frames for one frame per window
        of ``every_seconds`` when a window spans at least ``reference_min_frames`` frames (the
        first reference frame of a window is then still inside it, a few frames late at most);
        every frame otherwise (counting frames and scoring scene changes need them all)."""
        if self.keyframes_only:
            return DecodeMode.KEYFRAMES
        if (
            self.mode is SamplingMode.EVERY_SECONDS
            and fps
            and reference_min_frames > 0
            and self.every_seconds * fps >= reference_min_frames
        ):
            return DecodeMode.REFERENCE
        return DecodeMode.ALL

    def overridden_by(self, metadata: dict[str, str]) -> SamplingPolicy:
        """This policy with the object's ``framesift-*`` metadata applied; raises BadEvent."""
        overrides = {
            field: metadata[key] for key, field in POLICY_METADATA.items() if key in metadata
        }
        if not overrides:
            return self
        try:
            return SamplingPolicy.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            problems = "; ".join(
                f"{next(k for k, f in POLICY_METADATA.items() if f == e['loc'][0])}: {e['msg']}"
                for e in exc.errors()
            )
            raise BadEvent(f"invalid sampling metadata: {problems}") from exc
