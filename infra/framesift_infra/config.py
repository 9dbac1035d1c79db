"""The stack's settings, from Pulumi config (``framesift:*``, ``gcp:project``, ``gcp:region``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi


@dataclass(frozen=True)
class StackConfig:
    project: str
    region: str
    vendor: str = "manifest"
    classes: tuple[str, ...] = ("car", "truck", "person", "bicycle")
    sample_mode: str = "every_seconds"
    sample_every_seconds: float = 1.0
    dedup_threshold: int = 10
    dedup_scope: str = "collector"
    raw_prefix: str = ""
    images_prefix: str = "images/"
    cold_after_days: int = 30
    max_delivery_attempts: int = 5
    export_schedule: str = "*/10 * * * *"
    labelstudio_url: str = ""
    price_per_task: float = 0.012
    name_prefix: str = "framesift"
    labels: dict[str, str] = field(default_factory=lambda: {"app": "framesift"})

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        gcp, own = pulumi.Config("gcp"), pulumi.Config("framesift")
        defaults = cls(project="", region="")
        return cls(
            project=gcp.require("project"),
            region=gcp.require("region"),
            vendor=own.get("vendor") or defaults.vendor,
            classes=tuple(
                c.strip() for c in (own.get("classes") or ",".join(defaults.classes)).split(",")
            ),
            sample_mode=own.get("sampleMode") or defaults.sample_mode,
            sample_every_seconds=own.get_float("sampleEverySeconds")
            or defaults.sample_every_seconds,
            dedup_threshold=own.get_int("dedupThreshold") or defaults.dedup_threshold,
            dedup_scope=own.get("dedupScope") or defaults.dedup_scope,
            raw_prefix=own.get("rawPrefix") or defaults.raw_prefix,
            images_prefix=own.get("imagesPrefix") or defaults.images_prefix,
            cold_after_days=own.get_int("coldAfterDays") or defaults.cold_after_days,
            max_delivery_attempts=own.get_int("maxDeliveryAttempts")
            or defaults.max_delivery_attempts,
            export_schedule=own.get("exportSchedule") or defaults.export_schedule,
            labelstudio_url=own.get("labelstudioUrl") or defaults.labelstudio_url,
            price_per_task=own.get_float("pricePerTask") or defaults.price_per_task,
        )
