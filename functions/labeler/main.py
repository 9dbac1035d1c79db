"""Labeler function: dedup's kept frames, pushed by Pub/Sub, sent to the labeling vendor."""

import functions_framework
from cloudevents.http import CloudEvent

from framesift.runtime import run_pubsub_event
from framesift.topology import LABELER


@functions_framework.cloud_event
def request_labels(cloud_event: CloudEvent) -> None:
    run_pubsub_event(cloud_event, LABELER)
