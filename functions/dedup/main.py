"""Dedup function: the sampler's frame batches and photo uploads, pushed by Pub/Sub."""

import functions_framework
from cloudevents.http import CloudEvent

from framesift.runtime import dedup, run_pubsub_event


@functions_framework.cloud_event
def dedup_frames(cloud_event: CloudEvent) -> None:
    run_pubsub_event(cloud_event, dedup().handle_message, "dedup")
