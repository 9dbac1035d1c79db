"""Typed settings, read from ``FRAMESIFT_*`` environment variables.

The Google clients find the emulators through their own standard variables
(``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``FIRESTORE_EMULATOR_HOST``);
BigQuery has no such variable, so ``FRAMESIFT_BIGQUERY_ENDPOINT`` points it at an emulator.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from framesift.sampling import SamplingMode, SamplingPolicy


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMESIFT_", extra="ignore")

    backend: Backend = Backend.EMBEDDED
    project: str = "framesift-local"
    raw_bucket: str = "framesift-raw"
    frames_bucket: str = "framesift-frames"
    # Only objects under this prefix of the raw bucket are videos for the sampler.
    raw_prefix: str = ""
    # Photos uploaded as {images_prefix}{collector}/{name}.jpg|png go straight to dedup.
    images_prefix: str = "images/"
    # Folder holding buckets, the SQLite document store and the DuckDB warehouse (embedded).
    workdir: Path = Path(".framesift")

    # The deployment's sampling policy; an object's framesift-* metadata overrides it.
    sample_mode: SamplingMode = SamplingMode.EVERY_SECONDS
    sample_every_seconds: float = Field(default=1.0, gt=0)
    sample_every_frames: int = Field(default=30, ge=1)
    scene_threshold: float = Field(default=0.3, gt=0, lt=1)
    keyframes_only: bool = False
    # A video longer than this is sampled in segments of about this length, one invocation each,
    # so a two-hour video finishes within Cloud Functions' 540 s limit per event.
    segment_seconds: float = Field(default=300.0, ge=1.0)
    # Videos with more pixels per frame are refused before decoding: one raw frame of a
    # 16384x16384 video is 400 MB, and a function killed for memory never records why, so
    # Pub/Sub would redeliver it into the same crash. The default admits 8K UHD (7680x4320).
    max_video_pixels: int = Field(default=7680 * 4320, ge=1)
    jpeg_quality: int = Field(default=90, ge=1, le=100, description="JPEG quality, libjpeg scale")
    frames_per_message: int = Field(default=50, ge=1, le=1000)

    bigquery_dataset: str = "framesift"
    bigquery_location: str = "US"
    bigquery_endpoint: str | None = None
    # Lifetime of the signed URL ffmpeg streams a video from (production only).
    signed_url_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # Service account that signs URLs through IAM signBlob when no key file exists.
    signer_service_account: str | None = None

    # Frames within this many bits of pHash of a kept frame are dropped as near duplicates.
    # benchmarks/dedup_quality.py: objects arriving in a hold are lost from 16 bits up.
    dedup_threshold: int = Field(default=10, ge=0, le=32)
    # Where near duplicates are looked for beyond the video: one collector's frames, or all.
    dedup_scope: DedupScope = DedupScope.COLLECTOR

    # Labeling: which vendor gets the kept frames, and what it is asked to draw.
    labeling_vendor: Vendor = Vendor.MANIFEST
    labeling_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["car", "truck", "person", "bicycle"]
    )
    labeling_image_url: ImageUrlMode = ImageUrlMode.SIGNED
    # Vendors may take days to get to a task, so their signed URLs live longer than ffmpeg's.
    labeling_url_hours: int = Field(default=7 * 24, ge=1, le=7 * 24)
    # Retries of a vendor's 429/5xx within one invocation, before Pub/Sub redelivers.
    labeling_retry_seconds: float = Field(default=60.0, ge=0)
    labeling_batch_size: int = Field(default=100, ge=1, le=1000)
    # What the vendor charges per task (SageMaker Ground Truth: about $0.012 at the lowest tier).
    labeling_price_per_task: float = Field(default=0.012, ge=0)
    # Which kept frames are labeled (see framesift.selection): a "module:factory" policy, or the
    # built-in one, which skips frames below this sharpness and sends the sharpest first.
    selection_policy: str | None = None
    selection_min_sharpness: float = Field(default=0.0, ge=0)
    # The public URL of the webhook function; vendors call back {webhook_url}/scale etc.
    webhook_url: str | None = None

    scale_api_key: SecretStr | None = None
    scale_api_url: str | None = None  # another instance of the API (tests: a local fake)
    scale_project: str = "framesift"
    scale_instruction: str = "Draw a tight box around every object of the listed classes."
    scale_min_width: int = Field(default=8, ge=0)
    scale_min_height: int = Field(default=8, ge=0)
    # Scale sends it back in the scale-callback-auth header of every callback.
    scale_callback_auth_key: SecretStr | None = None

    labelstudio_url: str = "http://127.0.0.1:8080"
    labelstudio_api_key: SecretStr | None = None
    labelstudio_project: str = "framesift"
    # Label Studio sends it in the X-Framesift-Secret header configured on its webhook.
    labelstudio_webhook_secret: SecretStr | None = None

    # Callbacks larger than this are refused with 413 (a Scale response with 1,000 boxes is
    # about 300 KB).
    webhook_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # The exporter re-reads documents this much older than its watermark (writers' clock skew,
    # transactions committing late), and holds its lease at most this long.
    export_overlap_seconds: float = Field(default=300.0, ge=0)
    export_lease_seconds: float = Field(default=900.0, ge=10)

    # A message whose handling failed this many times is dead-lettered and acknowledged.
    max_delivery_attempts: int = Field(default=5, ge=1, le=100)

    log_level: str = "INFO"

    @field_validator("labeling_classes", mode="before")
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
