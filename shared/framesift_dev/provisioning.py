"""What the dev stack creates in its emulators, as the infra does when deployed: the topics,
the buckets, the warehouse's dataset and tables, each function's push subscriptions with their
dead-letter topics, and the pull subscriptions that keep dead letters."""

from __future__ import annotations

from collections.abc import Mapping

from framesift.config import Settings
from framesift.topology import DEV_PUSH, FunctionSpec, Topics, holding_subscription
from framesift_dev.services import environ

# The stack's names are the settings' defaults, so a shell with no FRAMESIFT_* set matches it.
_DEFAULTS = Settings.model_construct()
PROJECT = _DEFAULTS.project
RAW_BUCKET = _DEFAULTS.raw_bucket
FRAMES_BUCKET = _DEFAULTS.frames_bucket
BIGQUERY_DATASET = _DEFAULTS.bigquery_dataset


def provision(project: str, env: Mapping[str, str]) -> None:
    """Buckets, topics, the BigQuery dataset; the topic before any upload, or events drop."""
    with environ(env):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import pubsub_v1, storage

        from framesift.adapters.gcp.bigquery import BigQueryWarehouse
        from framesift.warehouse.schemas import ALL_TABLES

        publisher = pubsub_v1.PublisherClient()
        for topic in Topics.ALL:
            publisher.create_topic(name=publisher.topic_path(project, topic))
        hold(project, env, Topics.DEAD_LETTERS)
        gcs = storage.Client(project=project, credentials=AnonymousCredentials())
        for bucket in (RAW_BUCKET, FRAMES_BUCKET):
            gcs.create_bucket(bucket)
        warehouse = BigQueryWarehouse(
            project,
            BIGQUERY_DATASET,
            endpoint=env["FRAMESIFT_BIGQUERY_ENDPOINT"],
        )
        warehouse.create_dataset()  # as the infra does when deployed
        warehouse.ensure_tables(ALL_TABLES)


def subscribe(
    project: str, env: Mapping[str, str], instance: FunctionSpec, port: int, attempts: int
) -> None:
    """Push ``instance``'s topics to it on ``port``, each with its dead-letter topic after
    ``attempts`` deliveries."""
    with environ(env):
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        for topic_name in instance.subscribes:
            topic = subscriber.topic_path(project, topic_name)
            dead = publisher.topic_path(project, instance.dead_letter_topic(topic_name))
            publisher.create_topic(name=dead)
            hold(project, env, instance.dead_letter_topic(topic_name))
            # As deployed (see infra/), with the dev stack's own settings (topology).
            subscriber.create_subscription(
                request={
                    "name": subscriber.subscription_path(
                        project, instance.subscription(topic_name)
                    ),
                    "topic": topic,
                    "push_config": {"push_endpoint": f"http://127.0.0.1:{port}/{topic}"},
                    "ack_deadline_seconds": DEV_PUSH.ack_deadline_s,
                    **(
                        {"message_retention_duration": {"seconds": DEV_PUSH.retention_s}}
                        if DEV_PUSH.retention_s
                        else {}
                    ),
                    "retry_policy": {
                        "minimum_backoff": {"seconds": DEV_PUSH.minimum_backoff_s},
                        "maximum_backoff": {"seconds": DEV_PUSH.maximum_backoff_s},
                    },
                    "dead_letter_policy": {
                        "dead_letter_topic": dead,
                        "max_delivery_attempts": attempts,
                    },
                }
            )


def hold(project: str, env: Mapping[str, str], topic: str) -> None:
    """As deployed: a pull subscription keeps what reaches a dead-letter topic (Pub/Sub
    drops a message published to a topic with no subscription)."""
    with environ(env):
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        subscriber.create_subscription(
            name=subscriber.subscription_path(project, holding_subscription(topic)),
            topic=subscriber.topic_path(project, topic),
        )
