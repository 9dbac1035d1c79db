"""The whole bundle: buckets, topics with dead letters, five functions with one service account
each and only the roles it needs, Firestore, BigQuery, Cloud Scheduler and Secret Manager.

Event functions are served as Cloud Run-backed functions (2nd gen) fed by push subscriptions
that this program owns, rather than Eventarc triggers: so each subscription gets its own
dead-letter topic, a maximum number of delivery attempts and a retry backoff, and pushes with
an OIDC token of a dedicated invoker account (functions-framework turns the push body into the
CloudEvent the entry point takes, as it does under ``framesift dev up``). The webhook is the only
function reachable without that token; vendors authenticate to it with the shared secrets.

A first ``pulumi up`` on a new project works with no step outside it (but those of
docs/operations.md's first deploy): the APIs are enabled first and every resource waits for
them; secret values come from the stack's secret config; the functions build with an account
of their own, and each function waits for that account's grants, its own grants and its
secrets' versions; each push subscription waits for its invoker grant and Pub/Sub's token
grant; the alert waits until Cloud Monitoring knows its metric; every dead-letter topic keeps
its messages in a subscription. tests/deploy/test_infra.py reads that order from the
dependencies Pulumi registers, and scripts/mutate-infra checks those tests fail on wrong
programs.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from framesift.config import Vendor
from framesift.topology import FUNCTIONS, WEBHOOK, Topics
from framesift.vendors.registry import VENDORS
from framesift_infra.config import StackConfig
from framesift_infra.datastores import create_firestore, create_warehouse
from framesift_infra.functions import WEBHOOK_ACCESS, build_account, deploy_function, environment
from framesift_infra.messaging import create_topics, hold, push_invoker, schedule_ticks
from framesift_infra.monitoring import create_alerts
from framesift_infra.secretmanager import create_secrets
from framesift_infra.services import enable_apis
from framesift_infra.stack import Stack, service_uri
from framesift_infra.storage import create_buckets, notify_uploads


def deploy(config: StackConfig) -> Stack:
    if config.webhook_access not in WEBHOOK_ACCESS:
        raise ValueError(
            f"framesift:webhookAccess is {config.webhook_access!r}: {' or '.join(WEBHOOK_ACCESS)}"
        )
    stack = Stack()
    project_number = gcp.organizations.get_project(project_id=config.project).number
    enable_apis(stack, config)
    create_buckets(stack, config)
    create_topics(stack, config)
    notify_uploads(stack, config)
    secrets = create_secrets(stack, config)
    dataset = create_warehouse(stack, config)
    create_firestore(stack, config)

    pubsub_agent = f"serviceAccount:service-{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    invoker = push_invoker(stack, pubsub_agent)
    builder = build_account(stack, config, project_number)
    env = environment(config, stack)
    for spec in FUNCTIONS:  # in the table's order: the webhook first, whose URL the labeler needs
        deploy_function(stack, config, spec, env, secrets, dataset, invoker, pubsub_agent, builder)
    hold(stack, config, Topics.DEAD_LETTERS)

    schedule_ticks(stack, config)
    create_alerts(stack, config, project_number)
    pulumi.export("raw_bucket", stack.buckets["raw"].name)
    pulumi.export("frames_bucket", stack.buckets["frames"].name)
    webhook = service_uri(stack.functions[WEBHOOK.name])
    # The addresses to give the vendors (the names the docs and earlier stacks use).
    for output, vendor in (
        ("scale_callback_url", Vendor.SCALE),
        ("labelstudio_webhook_url", Vendor.LABELSTUDIO),
    ):
        pulumi.export(output, webhook.apply(VENDORS[vendor].callback_url))
    return stack
