"""Dedup function: the sampler's frame batches and photo uploads, pushed by Pub/Sub."""

import functions_framework
from cloudevents.http import CloudEvent

from framesift.runtime import run_pubsub_event
from framesift.topology import DEDUP


@functions_framework.cloud_event
def dedup_frames(cloud_event: CloudEvent) -> None:
    run_pubsub_event(cloud_event, DEDUP)
