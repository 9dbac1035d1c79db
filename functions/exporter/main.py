"""Exporter function: Cloud Scheduler's ticks on export-requests, documents -> warehouse."""

import functions_framework
from cloudevents.http import CloudEvent

from framesift.runtime import run_pubsub_event
from framesift.topology import EXPORTER


@functions_framework.cloud_event
def export_warehouse(cloud_event: CloudEvent) -> None:
    run_pubsub_event(cloud_event, EXPORTER)
