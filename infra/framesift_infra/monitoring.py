"""Alerts on dead letters (a function's, or Pub/Sub's own) and an optional billing budget."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack

# The log line framesift.delivery writes when it dead-letters a message (JSON, for Cloud
# Logging, from a function's Cloud Run revision).
DEAD_LETTER_LOG_FILTER = (
    'resource.type="cloud_run_revision" AND severity>=ERROR'
    ' AND jsonPayload.message=~"^message dead-lettered"'
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


def create_alerts(stack: Stack, config: StackConfig) -> None:
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
            opts=stack.opts(metric),
        )
    )
    if config.billing_account and config.monthly_budget_usd:
        stack.add(
            gcp.billing.Budget(
                "budget",
                billing_account=config.billing_account,
                display_name="framesift",
                budget_filter={"projects": [f"projects/{config.project}"]},
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
