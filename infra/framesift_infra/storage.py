"""The buckets (raw uploads, frames and manifests, the functions' sources) and the raw bucket's
notifications of uploads."""

from __future__ import annotations

import pulumi_gcp as gcp

from framesift.topology import Topics
from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack


def create_buckets(stack: Stack, config: StackConfig) -> None:
    prefix = f"{config.name_prefix}-{config.project}"
    stack.buckets["raw"] = stack.add(
        gcp.storage.Bucket(
            "raw",
            name=f"{prefix}-raw",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            lifecycle_rules=[
                {
                    "action": {"type": "SetStorageClass", "storage_class": "COLDLINE"},
                    "condition": {"age": config.cold_after_days},
                }
            ],
            opts=stack.opts(),
        )
    )
    stack.buckets["frames"] = stack.add(
        gcp.storage.Bucket(
            "frames",
            name=f"{prefix}-frames",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            # A redelivered manifest is rewritten whole, each time a new version: keep the
            # older ones for a while, not for ever.
            versioning={"enabled": True},
            lifecycle_rules=[
                {
                    "action": {"type": "Delete"},
                    "condition": {
                        "days_since_noncurrent_time": config.noncurrent_days,
                        "with_state": "ARCHIVED",
                    },
                }
            ],
            opts=stack.opts(),
        )
    )
    stack.buckets["sources"] = stack.add(
        gcp.storage.Bucket(
            "sources",
            name=f"{prefix}-sources",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            opts=stack.opts(),
        )
    )


def notify_uploads(stack: Stack, config: StackConfig) -> None:
    """OBJECT_FINALIZE of the raw bucket (videos, and photos under the images prefix)."""
    agent = gcp.storage.get_project_service_account(project=config.project)
    publish = stack.add(
        gcp.pubsub.TopicIAMMember(
            "gcs-agent-publishes-raw-objects",
            opts=stack.opts(),
            topic=stack.topics[Topics.RAW_OBJECTS].name,
            role="roles/pubsub.publisher",
            member=f"serviceAccount:{agent.email_address}",
        )
    )
    prefixes = [config.raw_prefix]
    if config.raw_prefix and config.images_prefix:  # an empty raw prefix covers the images
        prefixes.append(config.images_prefix)
    for index, prefix in enumerate(prefixes):
        stack.add(
            gcp.storage.Notification(
                f"raw-finalize-{index}",
                bucket=stack.buckets["raw"].name,
                payload_format="JSON_API_V1",
                topic=stack.topics[Topics.RAW_OBJECTS].id,
                event_types=["OBJECT_FINALIZE"],
                object_name_prefix=prefix or None,
                opts=stack.opts(publish),
            )
        )
