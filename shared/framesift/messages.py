"""The messages the stages send each other on Pub/Sub, each parsed from a
:class:`~framesift.events.PubSubMessage` by its ``from_message`` (a malformed one raises
:class:`~framesift.errors.BadEvent`).

- ``video-segments``: :class:`SegmentTask`, one part of a long video (sampler to sampler);
- ``frames-sampled``: :class:`FrameBatch`, a chunk of one segment's frames (sampler to dedup);
- ``frames-kept``: :class:`KeptFrames`, a batch's kept frames (dedup to labeler);
- ``labeling-rounds``: :class:`LabelingRound` (Cloud Scheduler, or the embedded run's end, to
  the labeler);
- ``export-requests``: :class:`ExportRequest` (Cloud Scheduler, or an operator, to exporter).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framesift.capture import CaptureFields
from framesift.errors import BadEvent
from framesift.events import PubSubMessage
from framesift.imagestats import LAYOUT_UNKNOWN
from framesift.sampling import DecodeMode, SamplingPolicy

# Attribute that marks a message on the video-segments topic.
SEGMENT_MESSAGE = "framesift-segment"
# Attribute that marks a message on the labeling-rounds topic (Cloud Scheduler sets it too).
ROUND_MESSAGE = "framesift-round"


class _Message(BaseModel):
    # What the message is called in the error a malformed one raises.
    kind: ClassVar[str]

    @classmethod
    def from_message(cls, message: PubSubMessage) -> Self:
        try:
            return cls.model_validate(message.json_payload())
        except ValidationError as exc:
            raise BadEvent(f"malformed {cls.kind}: {exc}") from exc


class SampledFrame(BaseModel):
    """What dedup needs of a frame, so it never downloads the JPEG again."""

    frame_id: str
    timestamp_ms: int
    bucket: str
    object_name: str
    sha256: str
    phash: str
    sharpness: float
    brightness: float
    width: int | None = None
    height: int | None = None
    layout: str = LAYOUT_UNKNOWN  # unknown in a message from before colour layouts


class FrameBatch(_Message):
    """One message to the dedup stage: a chunk of one segment's sampled frames."""

    kind: ClassVar[str] = "frame batch"

    video_doc_id: str
    collector: str
    video_id: str
    segment_index: int
    batch_index: int
    batch_count: int
    frames: list[SampledFrame]
    # Its segment did not decode cleanly: its frames are decided, but never become the
    # originals other sources' frames are dropped against (a corrupt copy must not cost the
    # clean video its frames).
    source_damaged: bool = False

    @property
    def batch_id(self) -> str:
        return f"{self.video_doc_id}_{self.segment_index:05d}_{self.batch_index:04d}"


class KeptFrames(_Message):
    """One message to the labeler: the frames of one dedup batch that were kept."""

    kind: ClassVar[str] = "kept-frames message"

    batch_id: str
    collector: str
    video_doc_id: str = ""
    video_id: str = ""
    frames: list[SampledFrame]


class Segment(BaseModel):
    """The part ``[start_s, end_s)`` of a stream one invocation samples, in the file's times from
    its start (ffmpeg's ``-copyts -start_at_zero``).

    ``first_frame`` is the index of its first frame, for the every-N-frames policy.
    """

    model_config = ConfigDict(frozen=True)

    start_s: float = 0.0
    end_s: float | None = None
    first_frame: int = 0


class ToneMap(BaseModel):
    """An HDR source's colour, as its probe tags it, for tone-mapping it to BT.709 SDR."""

    model_config = ConfigDict(frozen=True)

    transfer: str  # ffprobe's color_transfer: smpte2084 (PQ) or arib-std-b67 (HLG)
    primaries: str  # ffprobe's color_primaries (bt2020)
    matrix: str  # ffprobe's color_space (bt2020nc)


class Picture(BaseModel):
    """What the sampler's filters do to a video so each frame is what a person sees, decided
    once from its probe so every segment samples alike. Rotation is mostly not here: ffmpeg's
    own autorotation applies the display matrix before the filters (docs/footage.md, (d));
    only an interlaced video is turned in the filters, after deinterlacing (``turn``)."""

    model_config = ConfigDict(frozen=True)

    stream: int = 0  # the video stream sampled, counted among the video streams (ffmpeg's 0:v:N)
    deinterlace: bool = False
    tone_map: ToneMap | None = None
    # Degrees clockwise the filters turn each kept frame, ffmpeg's autorotation off (0: none, or
    # autorotation's job).
    turn: int = 0


PLAIN_PICTURE = Picture()  # the first video stream, no filter: SDR progressive video


class SegmentTask(_Message):
    """One part of a video for one sampler invocation (a message on the video-segments topic)."""

    kind: ClassVar[str] = "segment task"

    video_doc_id: str
    bucket: str
    object_name: str
    generation: int
    collector: str
    video_id: str
    policy: SamplingPolicy
    # The video stream's first presentation time: frame timestamps count from it.
    start_time_s: float
    index: int
    count: int
    segment: Segment
    picture: Picture = PLAIN_PICTURE
    rotation: int = 0  # degrees clockwise the source is turned for display, recorded per frame
    # Decided once per video, so every segment decodes the same frames one pass would.
    decode: DecodeMode = DecodeMode.ALL
    # The video's, which each frame gets at its own time (none in a message from before them).
    capture: CaptureFields = Field(default_factory=CaptureFields)
    # The index of the video's GoPro GPMF track, which places each frame (None: it has none).
    telemetry_stream: int | None = None
    # The object name of the video's telemetry sidecar beside it, found when it was planned.
    sidecar: str | None = None

    @property
    def segment_id(self) -> str:
        return f"{self.video_doc_id}_{self.index:05d}"


class LabelingRound(_Message):
    """A labeling round: spend the budget on the frames queued for it. ``round`` names the
    budget's period; Cloud Scheduler's static message leaves it out and the round is the UTC
    day the message was published."""

    kind: ClassVar[str] = "labeling round"

    round: str | None = None

    @classmethod
    def from_message(cls, message: PubSubMessage) -> LabelingRound:
        payload = message.json_payload() if message.data else {}
        named = payload.get("round") if isinstance(payload, dict) else None
        if named:
            return cls(round=str(named))
        published = message.publish_time or datetime.now(UTC)
        return cls(round=published.astimezone(UTC).date().isoformat())


class ExportRequest(_Message):
    """A request to export: the scheduler's tick (``{"full": false}``), or a full re-export."""

    kind: ClassVar[str] = "export request"

    full: bool = False

    @classmethod
    def from_message(cls, message: PubSubMessage) -> ExportRequest:
        """An empty message, or one whose JSON is not an object, is an ordinary tick."""
        payload = message.json_payload() if message.data else {}
        return cls(full=bool(isinstance(payload, dict) and payload.get("full")))
