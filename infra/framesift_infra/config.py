"""The stack's settings, from Pulumi config (``framesift:*``, ``gcp:project``, ``gcp:region``).

Each setting the functions also read defaults to the functions' own default
(:class:`framesift.config.Settings`), declared there once; a key left out of the Pulumi config
takes it, and a key given (an explicit 0 included) is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi

from framesift.config import Settings
from framesift_infra.secrets import SECRETS, secrets_of

T = TypeVar("T")
_SETTINGS = Settings.model_construct()  # the defaults, not this machine's FRAMESIFT_* values


@dataclass(frozen=True)
class StackConfig:
    project: str
    region: str
    vendor: str = _SETTINGS.labeling_vendor.value
    classes: tuple[str, ...] = tuple(_SETTINGS.labeling_classes)
    sample_mode: str = _SETTINGS.sample_mode.value
    sample_every_seconds: float = _SETTINGS.sample_every_seconds
    dedup_threshold: int = _SETTINGS.dedup_threshold
    dedup_scope: str = _SETTINGS.dedup_scope.value
    # Hours of a tiered dedup index's generation (None: not tiered; docs/dedup-index.md).
    dedup_window_hours: int | None = _SETTINGS.dedup_window_hours
    dedup_tail_tables: int = _SETTINGS.dedup_tail_tables
    raw_prefix: str = _SETTINGS.raw_prefix
    images_prefix: str = _SETTINGS.images_prefix
    max_delivery_attempts: int = _SETTINGS.max_delivery_attempts
    price_per_task: float = _SETTINGS.labeling_price_per_task
    # A pre-labeling model (gs://bucket/object): the labeler is sized for it and may read it.
    model_uri: str = ""
    # Tasks per labeling round (0: none, every frame sent at once), and when rounds run.
    labeling_budget: int = _SETTINGS.labeling_budget
    labeling_round_schedule: str = "0 0 * * *"
    # The infra's own: raw videos move to Coldline after this many days; older versions of
    # frames and manifests are deleted this many days after being replaced; the export schedule.
    cold_after_days: int = 30
    noncurrent_days: int = 30
    export_schedule: str = "*/10 * * * *"
    # Alerts on dead letters go to this address (none: the policy shows in the console only);
    # a monthly budget on this billing account, when both are given.
    alert_email: str = ""
    billing_account: str = ""
    monthly_budget_usd: float = 0.0
    # Secret id -> value (from `pulumi config set --secret`), for the vendor's secrets.
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # How vendors reach the webhook: "allUsers" (an invoker binding for everyone), or
    # "noInvokerCheck" (Cloud Run's invoker IAM check disabled, for organisations whose
    # domain-restricted sharing refuses allUsers). Either way the vendors' secrets authenticate.
    webhook_access: str = "allUsers"
    # The Label Studio server's public URL (required with vendor labelstudio): the settings'
    # loopback default means nothing in the cloud.
    labelstudio_url: str = ""
    name_prefix: str = "framesift"
    labels: dict[str, str] = field(default_factory=lambda: {"app": "framesift"})

    @classmethod
    def from_pulumi(cls) -> StackConfig:
        gcp, own = pulumi.Config("gcp"), pulumi.Config("framesift")
        given: dict[str, Any] = {
            "vendor": own.get("vendor"),
            "classes": _map(own.get("classes"), _split),
            "sample_mode": own.get("sampleMode"),
            "sample_every_seconds": own.get_float("sampleEverySeconds"),
            "dedup_threshold": own.get_int("dedupThreshold"),
            "dedup_scope": own.get("dedupScope"),
            "dedup_window_hours": own.get_int("dedupWindowHours"),
            "dedup_tail_tables": own.get_int("dedupTailTables"),
            "raw_prefix": own.get("rawPrefix"),
            "images_prefix": own.get("imagesPrefix"),
            "cold_after_days": own.get_int("coldAfterDays"),
            "noncurrent_days": own.get_int("noncurrentDays"),
            "alert_email": own.get("alertEmail"),
            "billing_account": own.get("billingAccount"),
            "monthly_budget_usd": own.get_float("monthlyBudgetUsd"),
            "max_delivery_attempts": own.get_int("maxDeliveryAttempts"),
            "export_schedule": own.get("exportSchedule"),
            "labelstudio_url": own.get("labelstudioUrl"),
            "price_per_task": own.get_float("pricePerTask"),
            "webhook_access": own.get("webhookAccess"),
            "model_uri": own.get("modelUri"),
            "labeling_budget": own.get_int("labelingBudget"),
            "labeling_round_schedule": own.get("labelingRoundSchedule"),
        }
        vendor = given["vendor"] or cls.vendor
        # An optional secret (the previous one, while rotating) is left out when unset.
        secrets = {
            secret_id: value
            for secret_id in secrets_of(vendor)
            if (
                value := (
                    own.get_secret(SECRETS[secret_id].config_key)
                    if SECRETS[secret_id].optional
                    else own.require_secret(SECRETS[secret_id].config_key)
                )
            )
            is not None
        }
        return cls(
            project=gcp.require("project"),
            region=gcp.require("region"),
            secrets=secrets,
            **{key: value for key, value in given.items() if value is not None},
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def _map(value: str | None, convert: Callable[[str], T]) -> T | None:
    return None if value is None else convert(value)
