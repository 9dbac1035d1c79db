"""Alerts on dead letters (a function's, or Pub/Sub's own) and an optional billing budget."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack

# The log line framesift.delivery writes when it dead-letters a message (JSON, for Cloud
# Logging, from a function's Cloud Run revision).
DEAD_LETTER_LOG_FILTER = (
    'resource.type="cloud_run_revision" AND severity>=ERROR'
    ' AND jsonPayload.message=~"^message dead-lettered"'
)

# Cloud Monitoring knows a new log-based metric minutes after Logging made it, and refuses an
# alert policy on it until then ("Cannot find metric(s) ... it could take up to 10 minutes to
# become available": https://github.com/hashicorp/terraform-provider-google/issues/11102). So a
# first deploy waits, up to 15 minutes, until Monitoring describes the metric
# (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.metricDescriptors/get).
WAIT_FOR_METRIC = (
    "for attempt in $(seq 60); do"
    ' curl -sf -o /dev/null -H "Authorization: Bearer $(gcloud auth print-access-token)"'
    " https://monitoring.googleapis.com/v3/projects/{project}/metricDescriptors/{metric_type}"
    " && exit 0; sleep 15; done;"
    " echo 'Cloud Monitoring does not know {metric_type} after 15 minutes' >&2; exit 1"
)


def _any_in_5_minutes(name: str, metric_filter: pulumi.Input[str]) -> Any:
    """An alert condition that fires on any count of the metric within 5 minutes."""
    return {
        "display_name": name,
        "condition_threshold": {
            "filter": metric_filter,
            "comparison": "COMPARISON_GT",
            "threshold_value": 0,
            "duration": "0s",
            "aggregations": [{"alignment_period": "300s", "per_series_aligner": "ALIGN_SUM"}],
        },
    }


def create_alerts(stack: Stack, config: StackConfig, project_number: str) -> None:
    """An alert when anything is dead-lettered (by a function, or by Pub/Sub itself), and an
    optional billing budget."""
    metric = stack.add(
        gcp.logging.Metric(
            "dead-letters-metric",
            name="framesift/dead-letters",
            description="Messages a framesift function gave up on",
            filter=DEAD_LETTER_LOG_FILTER,
            metric_descriptor={"metric_kind": "DELTA", "value_type": "INT64"},
            opts=stack.opts(),
        )
    )
    known = stack.add(
        command.local.Command(
            "dead-letters-metric-known",
            create=metric.name.apply(
                lambda name: WAIT_FOR_METRIC.format(
                    project=config.project, metric_type=f"logging.googleapis.com/user/{name}"
                )
            ),
            triggers=[metric.name],
            opts=stack.opts(metric),
        )
    )
    channels: list[pulumi.Input[str]] = []
    if config.alert_email:
        email = gcp.monitoring.NotificationChannel(
            "alert-email",
            display_name="framesift alerts",
            type="email",
            labels={"email_address": config.alert_email},
            opts=stack.opts(),
        )
        channels.append(stack.add(email).id)
    stack.add(
        gcp.monitoring.AlertPolicy(
            "dead-letters-alert",
            display_name="framesift: messages dead-lettered",
            combiner="OR",
            conditions=[
                _any_in_5_minutes(
                    "a function gave up on a message",
                    metric.name.apply(
                        lambda name: (
                            f'metric.type="logging.googleapis.com/user/{name}"'
                            ' AND resource.type="cloud_run_revision"'
                        )
                    ),
                ),
                _any_in_5_minutes(
                    "Pub/Sub moved a message to a dead-letter topic",
                    'metric.type="pubsub.googleapis.com/subscription/dead_letter_message_count"'
                    ' AND resource.type="pubsub_subscription"',
                ),
            ],
            notification_channels=channels,
            opts=stack.opts(known),
        )
    )
    if config.billing_account and config.monthly_budget_usd:
        stack.add(
            gcp.billing.Budget(
                "budget",
                billing_account=config.billing_account,
                display_name="framesift",
                # The Budget API names a project by its number: an id is refused on update
                # (https://github.com/pulumi/pulumi-gcp/issues/514) and shows as a diff on
                # every preview (GoogleCloudPlatform/cloud-foundation-fabric#2365).
                budget_filter={"projects": [f"projects/{project_number}"]},
                amount={
                    "specified_amount": {
                        "currency_code": "USD",
                        "units": str(int(config.monthly_budget_usd)),
                    }
                },
                threshold_rules=[{"threshold_percent": share} for share in (0.5, 0.9, 1.0)],
                all_updates_rule={"monitoring_notification_channels": channels},
                opts=stack.opts(),
            )
        )
