"""Pub/Sub: the topics between the stages, each function's push subscriptions with their own
dead-letter topics, the pull subscriptions that hold dead letters, and Cloud Scheduler's ticks."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from framesift.messages import ROUND_MESSAGE
from framesift.topology import (
    PUSH,
    FunctionSpec,
    Topics,
    holding_subscription,
    pubsub_max_delivery_attempts,
)
from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack, service_uri


def create_topics(stack: Stack, config: StackConfig) -> None:
    for topic in Topics.ALL:
        stack.topics[topic] = stack.add(
            gcp.pubsub.Topic(topic, name=topic, labels=config.labels, opts=stack.opts())
        )


@dataclass(frozen=True)
class PushInvoker:
    """The account whose OIDC tokens Pub/Sub's agent pushes with, and the grant letting the
    agent mint them: a push before it fails."""

    account: gcp.serviceaccount.Account
    token_grant: gcp.serviceaccount.IAMMember


def push_invoker(stack: Stack, pubsub_agent: str) -> PushInvoker:
    """The account whose OIDC tokens Pub/Sub's agent (``pubsub_agent``) pushes with."""
    invoker = stack.add(
        gcp.serviceaccount.Account(
            "push-invoker",
            account_id="framesift-push",
            display_name="framesift: Pub/Sub pushes to the functions",
            opts=stack.opts(),
        )
    )
    # Pub/Sub mints the invoker's OIDC tokens for the pushes.
    token_grant = stack.add(
        gcp.serviceaccount.IAMMember(
            "push-invoker-token-creator",
            service_account_id=invoker.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=pubsub_agent,
            opts=stack.opts(),
        )
    )
    return PushInvoker(invoker, token_grant)


def hold(stack: Stack, config: StackConfig, topic: str) -> gcp.pubsub.Subscription:
    """A pull subscription on a dead-letter topic, keeping its messages 7 days for operators
    and ``framesift replay-dead-letters``."""
    name = holding_subscription(topic)
    return stack.add(
        gcp.pubsub.Subscription(
            name,
            name=name,
            topic=stack.topics[topic].name,
            ack_deadline_seconds=60,
            message_retention_duration="604800s",
            expiration_policy={"ttl": ""},  # never expires for want of a reader
            labels=config.labels,
            opts=stack.opts(),
        )
    )


def push_subscription(
    stack: Stack,
    config: StackConfig,
    spec: FunctionSpec,
    topic: str,
    function: gcp.cloudfunctionsv2.Function,
    invoker: PushInvoker,
    invoke: pulumi.Resource,
    pubsub_agent: str,
) -> None:
    """``spec``'s subscription to ``topic``, pushing to ``function`` once the invoker may call
    it (``invoke``) and Pub/Sub may sign as the invoker: a push before either is refused and
    counts as a delivery attempt."""
    name = spec.subscription(topic)
    dead_name = spec.dead_letter_topic(topic)
    # The function's Cloud Run service (run.app), which internal ingress admits Pub/Sub to.
    service = service_uri(function)
    dead = stack.add(
        gcp.pubsub.Topic(f"{name}-dead", name=dead_name, labels=config.labels, opts=stack.opts())
    )
    stack.topics[dead_name] = dead
    hold(stack, config, dead_name)
    # Pub/Sub's own agent moves messages to the dead-letter topic.
    stack.add(
        gcp.pubsub.TopicIAMMember(
            f"{name}-dead-publisher",
            opts=stack.opts(),
            topic=dead.name,
            role="roles/pubsub.publisher",
            member=pubsub_agent,
        )
    )
    subscription = stack.add(
        gcp.pubsub.Subscription(
            name,
            opts=stack.opts(invoke, invoker.token_grant),
            name=name,
            topic=stack.topics[topic].name,
            ack_deadline_seconds=PUSH.ack_deadline_s,
            message_retention_duration=f"{PUSH.retention_s}s",
            labels=config.labels,
            push_config={
                # functions-framework turns a push to this path into the CloudEvent.
                "push_endpoint": service.apply(
                    lambda url: f"{url}/projects/{config.project}/topics/{topic}"
                ),
                # The audience Cloud Run always accepts, its service's run.app URL
                # (https://cloud.google.com/run/docs/configuring/custom-audiences): not the
                # function's cloudfunctions.net `url`, nor the endpoint with its path (the
                # audience when left out).
                "oidc_token": {
                    "service_account_email": invoker.account.email,
                    "audience": service,
                },
            },
            retry_policy={
                "minimum_backoff": f"{PUSH.minimum_backoff_s}s",
                "maximum_backoff": f"{PUSH.maximum_backoff_s}s",
            },
            dead_letter_policy={
                "dead_letter_topic": dead.id,
                "max_delivery_attempts": pubsub_max_delivery_attempts(config.max_delivery_attempts),
            },
        )
    )
    stack.add(
        gcp.pubsub.SubscriptionIAMMember(
            f"{name}-dead-subscriber",
            opts=stack.opts(),
            subscription=subscription.name,
            role="roles/pubsub.subscriber",
            member=pubsub_agent,
        )
    )


def schedule_ticks(stack: Stack, config: StackConfig) -> None:
    _tick(
        stack,
        config,
        ("export-tick", "framesift-export"),
        config.export_schedule,
        Topics.EXPORT_REQUESTS,
        {"full": False},
    )
    if config.labeling_budget:
        # The budget's rounds, marked as such by their attribute; no round name in the body:
        # the labeler names each by the UTC day it was published.
        _tick(
            stack,
            config,
            ("labeling-round", "framesift-labeling-round"),
            config.labeling_round_schedule,
            Topics.LABELING_ROUNDS,
            {},
            {ROUND_MESSAGE: "scheduled"},
        )


def _tick(
    stack: Stack,
    config: StackConfig,
    names: tuple[str, str],
    schedule: str,
    topic: str,
    body: dict[str, Any],
    attributes: dict[str, str] | None = None,
) -> None:
    """A Cloud Scheduler job (its resource and job names) publishing ``body`` to ``topic`` on
    ``schedule``, in UTC."""
    resource, name = names
    stack.add(
        gcp.cloudscheduler.Job(
            resource,
            opts=stack.opts(),
            name=name,
            region=config.region,
            schedule=schedule,
            time_zone="Etc/UTC",
            pubsub_target=gcp.cloudscheduler.JobPubsubTargetArgs(
                topic_name=stack.topics[topic].id,
                data=base64.b64encode(json.dumps(body).encode()).decode(),
                attributes=attributes,
            ),
        )
    )
