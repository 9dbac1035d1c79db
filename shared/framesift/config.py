"""Typed settings, read from ``FRAMESIFT_*`` environment variables.

The Google clients find the emulators through their own standard variables
(``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``FIRESTORE_EMULATOR_HOST``);
BigQuery has no such variable, so ``FRAMESIFT_BIGQUERY_ENDPOINT`` points it at an emulator.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from framesift.geometry import Shape
from framesift.modelspec import OutputFormat, Uncertainty
from framesift.sampling import SamplingMode, SamplingPolicy
from framesift.vendor_settings import LabelStudioSettings, ScaleSettings


class Backend(StrEnum):
    EMBEDDED = "embedded"
    GCP = "gcp"


class DedupScope(StrEnum):
    COLLECTOR = "collector"
    ALL = "all"


class Vendor(StrEnum):
    MANIFEST = "manifest"
    SCALE = "scale"
    LABELSTUDIO = "labelstudio"


class ImageUrlMode(StrEnum):
    SIGNED = "signed"  # a V4 signed URL, for vendors without access to the bucket
    GCS = "gs"  # gs://bucket/object, for a vendor given read access (Scale's GCS integration)


class Settings(BaseSettings, ScaleSettings, LabelStudioSettings):
    """Every setting, read from ``FRAMESIFT_{NAME}``; each field's description is its
    documentation (docs/configuration.md is generated from them: ``scripts/docs``). Each
    vendor's own settings are a group of their own (:mod:`framesift.vendor_settings`)."""

    model_config = SettingsConfigDict(env_prefix="FRAMESIFT_", extra="ignore")

    backend: Backend = Field(
        default=Backend.EMBEDDED,
        description="`gcp` (Google's clients, or the emulators their standard variables name) "
        "or `embedded` (folders, SQLite, DuckDB, in-process Pub/Sub).",
    )
    project: str = Field(default="framesift-local", description="The GCP project.")
    raw_bucket: str = Field(
        default="framesift-raw", description="The bucket videos and photos are uploaded to."
    )
    frames_bucket: str = Field(
        default="framesift-frames",
        description="Where frames and manifests are written: a bucket of its own, so the "
        "sampler never triggers itself.",
    )
    raw_prefix: str = Field(
        default="", description="Only objects under this prefix of the raw bucket are videos."
    )
    images_prefix: str = Field(
        default="images/",
        description="Photos uploaded as `{images_prefix}{collector}/{name}.jpg|png` go straight "
        "to dedup.",
    )
    workdir: Path = Field(
        default=Path(".framesift"),
        description="Embedded mode's folder: buckets, the SQLite documents and the DuckDB "
        "warehouse.",
    )

    sample_mode: SamplingMode = Field(
        default=SamplingMode.EVERY_SECONDS,
        description="The deployment's sampling policy (`every_seconds`, `every_frames`, "
        "`scene`); an object's `framesift-*` metadata overrides it.",
    )
    sample_every_seconds: float = Field(
        default=1.0, gt=0, description="every_seconds: the first frame of each N-second window."
    )
    sample_every_frames: int = Field(default=30, ge=1, description="every_frames: frames 0, N, 2N.")
    scene_threshold: float = Field(
        default=0.3, gt=0, lt=1, description="scene: ffmpeg's scene score (0..1) that is a cut."
    )
    keyframes_only: bool = Field(
        default=False,
        description="Decode keyframes only (`-skip_frame nokey`): far faster when the interval "
        "is at least the GOP.",
    )
    reference_decode_min_frames: float = Field(
        default=4.0,
        ge=0,
        description="Sampling one frame per N seconds decodes only reference frames (`-skip_frame "
        "noref`: about a third less CPU) when a window spans at least this many frames "
        "(N x fps); 0 decodes every frame.",
    )
    segment_seconds: float = Field(
        default=300.0,
        ge=1.0,
        description="A longer video is sampled in segments of about this length, one invocation "
        "each, so a two-hour video finishes within Cloud Functions' 540 s limit per event.",
    )
    max_video_pixels: int = Field(
        default=7680 * 4320,
        ge=1,
        description="Videos with more pixels per frame fail before decoding (one raw frame of a "
        "16384x16384 video is 400 MB, and a function killed for memory never records why, so "
        "Pub/Sub would redeliver it into the same crash). The default admits 8K UHD.",
    )
    ffmpeg_binary: str = Field(
        default="ffmpeg",
        description="The ffmpeg the sampler runs (deployed: the runtime image's, 4.4.2; any "
        "version from 4.2 on works).",
    )
    ffprobe_binary: str = Field(default="ffprobe", description="The ffprobe the sampler runs.")
    sampler_cpus: int = Field(
        default=0,
        ge=0,
        description="The CPUs the sampler's ffmpeg decodes on, which set its decoder threads "
        "(0: those this process may run on). ffmpeg's own count is the machine's, which on "
        "Cloud Functions can be the host's: the infra sets the sampler's vCPUs.",
    )
    source_reconnect_delay_max_s: int = Field(
        default=30,
        ge=0,
        le=4294,  # ffmpeg's own bound
        description="Reading a video over HTTP (deployed: a signed URL), ffmpeg reconnects "
        "after a dropped or stalled connection, a failed connect, a 408, 429 or 5xx, waiting 0, 1, "
        "3, 7 ... s while the wait is at most this; then the attempt fails as transient and "
        "Pub/Sub redelivers it.",
    )
    jpeg_quality: int = Field(
        default=90, ge=1, le=100, description="JPEG quality, libjpeg's scale."
    )
    frames_per_message: int = Field(
        default=50, ge=1, le=1000, description="Frames per message from the sampler to dedup."
    )

    bigquery_dataset: str = Field(default="framesift", description="The warehouse's dataset.")
    bigquery_location: str = Field(default="US", description="The dataset's location.")
    bigquery_endpoint: str | None = Field(
        default=None,
        description="A BigQuery emulator's URL (BigQuery's client has no emulator variable).",
    )
    signed_url_minutes: int = Field(
        default=30,
        ge=1,
        le=7 * 24 * 60,
        description="Lifetime of the signed URL ffmpeg streams a video from (gcp backend).",
    )
    signer_service_account: str | None = Field(
        default=None,
        description="The service account that signs URLs through IAM signBlob when no key file "
        "exists (the infra sets each function's own).",
    )

    dedup_threshold: int = Field(
        default=10,
        ge=0,
        le=32,
        description="Frames within this many bits of pHash of a kept frame are near duplicates "
        "(benchmarks/dedup_quality.py: objects arriving in a hold are lost from 16 bits up).",
    )
    dedup_layout_threshold: float = Field(
        default=12.0,
        ge=0,
        le=255,
        description="A near duplicate's colour layout (each quarter's luma less the frame's, Cb "
        "and Cr) must be within this many levels (mean absolute difference, 0..255) of the kept "
        "frame's: a scene of one pHash in other colours or another light is kept.",
    )
    dedup_scope: DedupScope = Field(
        default=DedupScope.COLLECTOR,
        description="Where near duplicates are looked for beyond the video: one collector's "
        "frames (`collector`) or all (`all`).",
    )
    dedup_leaf_cap: int = Field(
        default=2048,
        ge=1,
        le=16384,
        description="The most hashes one document of a dataset scope's index holds before it "
        "splits (docs/dedup-index.md: larger reads fewer, bigger documents per lookup). Changing "
        "it keeps every decision: a lookup follows the splits as stored.",
    )
    dedup_window_hours: int | None = Field(
        default=None,
        ge=1,
        description="Tiered dataset index (docs/dedup-index.md): frames kept in the same "
        "generation (periods of this many hours from the Unix epoch, UTC; 24: a day) are "
        "searched exactly, older ones through the tail, an approximate index of bounded cost "
        "per frame, for scopes headed past 10^7 kept frames. A generation's exact search costs "
        "what the scope keeps in the period: keep it near 10^6 kept frames (an hour at 300 "
        "kept/s, a day at 12). "
        "Unset: every kept frame is searched exactly (the cost per lookup grows about as the "
        "square root of the scope). Switched on, run `framesift migrate-dedup-index` once.",
    )
    dedup_tail_tables: int = Field(
        default=144,
        ge=1,
        # An append writes one leaf per table, each up to 41 KB: 200 fit Firestore's 10 MiB
        # per commit.
        le=200,
        description="The tiered index's tail: its number of tables, each one document written "
        "per kept frame and read per lookup (more where a table has split). More find more "
        "older near duplicates (the recall in docs/dedup-index.md, measured for this default "
        "at 10^8 kept frames).",
    )

    labeling_vendor: Vendor = Field(
        default=Vendor.MANIFEST,
        description="Who gets the kept frames: `manifest` (files in the frames bucket), `scale` "
        "or `labelstudio`.",
    )
    labeling_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["car", "truck", "person", "bicycle"],
        description="What boxes are drawn around, comma-separated.",
    )
    labeling_shapes: Annotated[list[Shape], NoDecode] = Field(
        default_factory=lambda: [Shape.BOX],
        description="What annotators may draw, comma-separated: `box`, `polygon`, `keypoint`, "
        "`mask` (Label Studio's brush; Scale has no masks). Exported by `framesift export`.",
    )
    image_base_url: str | None = Field(
        default=None,
        description="When set, vendors get `{base}/{bucket}/{object}` as a frame's image: a server "
        "in front of the frames that the vendor can reach (`framesift serve` sets its own "
        "address when none is given). Overrides `signed`; `gs` still wins.",
    )
    serve_host: str = Field(
        default="127.0.0.1",
        description="Where `framesift serve` (and `run` with a vendor) listens for the vendor's "
        "image fetches and callbacks.",
    )
    serve_port: int = Field(default=8765, ge=0, le=65535, description="Its port (0: any free one).")
    labeling_image_url: ImageUrlMode = Field(
        default=ImageUrlMode.SIGNED,
        description="How vendors get a frame: a V4 `signed` URL, or `gs://` for a vendor given "
        "read access to the bucket.",
    )
    labeling_url_hours: int = Field(
        default=7 * 24,
        ge=1,
        le=7 * 24,
        description="Lifetime of a vendor's signed URL: vendors may take days to get to a task.",
    )
    labeling_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Retries of a vendor's 429/5xx within one invocation, before Pub/Sub "
        "redelivers.",
    )
    labeling_batch_size: int = Field(
        default=100, ge=1, le=1000, description="Tasks per request to the vendor."
    )
    labeling_price_per_task: float = Field(
        default=0.012,
        ge=0,
        description="USD per task, for cost estimates (SageMaker Ground Truth's lowest tier).",
    )
    selection_policy: str | None = Field(
        default=None,
        description="Which kept frames are labeled, in which order: a `module:factory` policy, "
        "or none for the built-in one (with a model, the most uncertain first; without, the "
        "sharpest first; both skip frames below `selection_min_sharpness`).",
    )
    selection_min_sharpness: float = Field(
        default=0.0,
        ge=0,
        description="The built-in policies skip frames below this sharpness.",
    )
    selection_uncertainty: Uncertainty = Field(
        default=Uncertainty.MARGIN,
        description="How unsure the model is of a frame: `margin` (its box scored nearest 0.5), "
        "`least_confidence` (1 - its best box's score; a frame with no box counts as unsure) or "
        "`entropy`.",
    )
    labeling_budget: int = Field(
        default=0,
        ge=0,
        description="Tasks per labeling round (0: no budget, every selected frame is sent at "
        "once). With a budget, kept frames wait for the round (Cloud Scheduler's, daily; "
        "`framesift run --budget`: the end of the run), which sends the most uncertain first "
        "and skips the rest with their score.",
    )
    labeling_audit_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="The share of a round's budget spent on frames drawn at random from the "
        "rest, so the model is also measured where it is confident.",
    )

    model_uri: str | None = Field(
        default=None,
        description="An ONNX detector whose boxes pre-label each kept frame: a path or "
        "`gs://bucket/object`, loaded once per instance.",
    )
    model_version: str | None = Field(
        default=None,
        description="The model's version on its pre-labels (default: its file's name and the "
        "first 12 hex digits of its SHA-256).",
    )
    model_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The model's class names in index order, comma-separated (default: the "
        "`names` in the model's metadata, as Ultralytics exports write it). Classes outside "
        "`labeling_classes` are ignored.",
    )
    model_format: OutputFormat = Field(
        default=OutputFormat.AUTO,
        description="How to decode the model's outputs: `yolo` ([1, 4 + classes, anchors], NMS "
        "by framesift), `nms` (NMS in the model), or `auto` from their shapes.",
    )
    model_input_size: int = Field(
        default=640,
        ge=32,
        le=4096,
        description="The input's side when the model's input size is dynamic.",
    )
    model_confidence: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Boxes the model scores below this are neither pre-labels nor counted in "
        "its uncertainty (Ultralytics' default).",
    )
    model_iou: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="Non-maximum suppression's IoU for a model without NMS (Ultralytics' default).",
    )
    model_threads: int = Field(
        default=0,
        ge=0,
        description="onnxruntime's threads per inference (0: one per core; the infra sets the "
        "labeler's vCPUs).",
    )
    webhook_url: str | None = Field(
        default=None,
        description="The webhook function's public URL; vendors call back `{webhook_url}/scale` "
        "and `{webhook_url}/labelstudio`.",
    )

    annotation_edge_tolerance: float = Field(
        default=0.01,
        ge=0,
        le=0.2,
        description="How far past the image's edge (a fraction of its side) a callback's box may "
        "reach and be clipped to the edge; further is refused with 422.",
    )
    reconcile_max_deletion_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="`framesift reconcile` stops (exit 1, nothing written) when it would mark "
        "more than this share of the project's live labels deleted, unless given `--yes` "
        "(docs/operations.md, Reconcile).",
    )
    webhook_max_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Larger callbacks are refused with 413 (a Scale response with 1,000 boxes is "
        "about 300 KB).",
    )

    export_overlap_seconds: float = Field(
        default=300.0,
        ge=0,
        description="The exporter re-reads documents this much older than its watermark "
        "(writers' clock skew, transactions committing late).",
    )
    export_lease_seconds: float = Field(
        default=900.0, ge=10, description="The longest an exporter run holds its lease."
    )

    max_delivery_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="A message whose handling failed this many times is dead-lettered and "
        "acknowledged.",
    )

    log_level: str = Field(
        default="INFO",
        description="Logs are JSON lines for Cloud Logging (`severity`, `message`, trace).",
    )

    @field_validator("labeling_classes", "labeling_shapes", "model_classes", mode="before")
    @classmethod
    def _split_classes(cls, value: object) -> object:
        """``FRAMESIFT_LABELING_CLASSES=car,person`` (a comma-separated list)."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def sampling_policy(self) -> SamplingPolicy:
        return SamplingPolicy(
            mode=self.sample_mode,
            every_seconds=self.sample_every_seconds,
            every_frames=self.sample_every_frames,
            scene_threshold=self.scene_threshold,
            keyframes_only=self.keyframes_only,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


Section = TypeVar("Section")


def section(kind: type[Section], settings: Settings, **derived: Any) -> Section:
    """A stage's own settings: the dataclass ``kind`` with each field read from the setting of
    the same name, or given in ``derived`` (a value made from several settings). The composition
    root builds each stage's section, so a stage's signature shows what it reads."""
    names = [field.name for field in dataclasses.fields(kind)]  # type: ignore[arg-type]
    return kind(
        **{name: derived[name] if name in derived else getattr(settings, name) for name in names}
    )
