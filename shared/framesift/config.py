"""Typed settings, read from ``FRAMESIFT_*`` environment variables.

The Google clients find the emulators through their own standard variables
(``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``, ``FIRESTORE_EMULATOR_HOST``);
BigQuery has no such variable, so ``FRAMESIFT_BIGQUERY_ENDPOINT`` points it at an emulator.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Backend(StrEnum):
    EMBEDDED = "embedded"
    GCP = "gcp"


class Topics:
    """Pub/Sub topic names between the stages (defined once, used by functions, devstack, infra)."""

    RAW_OBJECTS = "raw-objects"
    FRAMES_SAMPLED = "frames-sampled"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAMESIFT_", extra="ignore")

    backend: Backend = Backend.EMBEDDED
    project: str = "framesift-local"
    raw_bucket: str = "framesift-raw"
    frames_bucket: str = "framesift-frames"
    # Only objects under this prefix of the raw bucket are videos for the sampler.
    raw_prefix: str = ""
    # Folder holding buckets, the SQLite document store and the DuckDB warehouse (embedded).
    workdir: Path = Path(".framesift")

    sample_every_seconds: float = Field(default=1.0, gt=0)
    jpeg_quality: int = Field(default=3, ge=2, le=31, description="ffmpeg -q:v, 2 is best")
    frames_per_message: int = Field(default=50, ge=1, le=1000)

    bigquery_dataset: str = "framesift"
    bigquery_location: str = "US"
    bigquery_endpoint: str | None = None
    # Lifetime of the signed URL ffmpeg streams a video from (production only).
    signed_url_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # Service account that signs URLs through IAM signBlob when no key file exists.
    signer_service_account: str | None = None

    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
