"""Sampler function: the raw bucket's OBJECT_FINALIZE notification, pushed by Pub/Sub."""

import functions_framework
from cloudevents.http import CloudEvent

from framesift.runtime import run_pubsub_event
from framesift.topology import SAMPLER


@functions_framework.cloud_event
def sample_video(cloud_event: CloudEvent) -> None:
    run_pubsub_event(cloud_event, SAMPLER)
