"""The bundle's shape, written once: its topics, its document collections and one spec per
function (name, entry point, what it is triggered by, what it publishes).

The runtime, the embedded pipeline, the dev stack, the infra and the CLI all read this table;
the infra adds only sizing (memory, CPU, timeout) by function name. Nothing here imports a
stage, so every reader stays as light as this module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Topics:
    """Pub/Sub topic names between the stages."""

    RAW_OBJECTS = "raw-objects"
    # Parts of a long video, each sampled by its own sampler invocation.
    VIDEO_SEGMENTS = "video-segments"
    FRAMES_SAMPLED = "frames-sampled"
    # Frames that survived dedup, on their way to the labeler.
    FRAMES_KEPT = "frames-kept"
    # Messages a stage gave up on (a permanent error, or too many failed deliveries), with why.
    DEAD_LETTERS = "dead-letters"
    # Cloud Scheduler's ticks (and on-demand requests) for the warehouse exporter.
    EXPORT_REQUESTS = "export-requests"
    # Cloud Scheduler's (or the embedded run's) labeling rounds, which spend the budget.
    LABELING_ROUNDS = "labeling-rounds"

    # Every topic between the stages, as the dev stack and the infra create them.
    ALL = (
        RAW_OBJECTS,
        VIDEO_SEGMENTS,
        FRAMES_SAMPLED,
        FRAMES_KEPT,
        DEAD_LETTERS,
        EXPORT_REQUESTS,
        LABELING_ROUNDS,
    )


class Collections:
    """Document-store collections (Firestore, or SQLite tables embedded)."""

    VIDEOS = "videos"
    VIDEO_SEGMENTS = "video_segments"
    FRAMES = "frames"
    ANNOTATIONS = "annotations"
    # The long lists of documents too large for one (an annotation's boxes; framesift.parts).
    DOCUMENT_PARTS = "document_parts"
    # Authenticated callbacks the webhook could not store and no retry would, kept to replay.
    REJECTED_CALLBACKS = "rejected_callbacks"
    # Dedup's indexes: the first kept frame per JPEG digest, pHash bands (a video's buckets,
    # a dataset scope's chain nodes), and batches sent on.
    CONTENT_HASHES = "content_hashes"
    PHASH_BUCKETS = "phash_buckets"
    PHASH_OWNERS = "phash_owners"
    # How far the dataset scopes' buckets migrated into chains (framesift.dedupmigration).
    DEDUP_INDEX_STATE = "dedup_index_state"
    DEDUP_BATCHES = "dedup_batches"
    # A vendor's one-time setup (e.g. the Label Studio project id).
    LABELING_VENDORS = "labeling_vendors"
    # Each labeling round's budget and what it spent.
    LABELING_ROUNDS = "labeling_rounds"
    # Failed deliveries counted per message, and the messages given up on.
    DELIVERIES = "deliveries"
    DEAD_LETTERS = "dead_letters"
    # Uploads no stage takes, with why.
    IGNORED_UPLOADS = "ignored_uploads"
    # The exporter's watermarks and lease, and the documents it could not export.
    EXPORT_STATE = "export_state"
    EXPORT_REJECTS = "export_rejects"


class Trigger(StrEnum):
    PUBSUB = "cloudevent"  # a Pub/Sub push, turned into a CloudEvent by functions-framework
    HTTP = "http"


# Pub/Sub accepts a dead-letter policy's max_delivery_attempts from 5 to 100.
_PUBSUB_MIN_ATTEMPTS, _PUBSUB_MAX_ATTEMPTS = 5, 100


def subscription_name(topic: str, subscriber: str) -> str:
    """The push subscription of ``subscriber`` (a function, or another instance of one) to
    ``topic``."""
    return f"{topic}-{subscriber}"


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the bundle: its folder ``functions/{name}/``, the entry point in its
    ``main.py``, the topics pushed to it (none: an HTTP function) and the topics it publishes."""

    name: str
    entry_point: str
    trigger: Trigger
    subscribes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()

    def subscription(self, topic: str) -> str:
        """The name of this function's push subscription to ``topic``."""
        return subscription_name(topic, self.name)

    def dead_letter_topic(self, topic: str) -> str:
        """Where Pub/Sub itself moves this function's messages from ``topic`` after too many
        deliveries (its backstop for a function that dies before it can count them)."""
        return f"{topic}-{self.name}-dead-letter"


SAMPLER = FunctionSpec(
    "sampler",
    "sample_video",
    Trigger.PUBSUB,
    subscribes=(Topics.RAW_OBJECTS, Topics.VIDEO_SEGMENTS),
    publishes=(Topics.VIDEO_SEGMENTS, Topics.FRAMES_SAMPLED, Topics.DEAD_LETTERS),
)
DEDUP = FunctionSpec(
    "dedup",
    "dedup_frames",
    Trigger.PUBSUB,
    # Photos arrive as raw-objects notifications under the images prefix.
    subscribes=(Topics.FRAMES_SAMPLED, Topics.RAW_OBJECTS),
    publishes=(Topics.FRAMES_KEPT, Topics.DEAD_LETTERS),
)
LABELER = FunctionSpec(
    "labeler",
    "request_labels",
    Trigger.PUBSUB,
    subscribes=(Topics.FRAMES_KEPT, Topics.LABELING_ROUNDS),
    publishes=(Topics.DEAD_LETTERS,),
)
WEBHOOK = FunctionSpec("webhook", "receive_callback", Trigger.HTTP)
EXPORTER = FunctionSpec(
    "exporter",
    "export_warehouse",
    Trigger.PUBSUB,
    subscribes=(Topics.EXPORT_REQUESTS,),
    publishes=(Topics.DEAD_LETTERS,),
)

# The webhook first: the labeler gives the vendors its URL, so it is started (and deployed)
# before the functions that need it.
FUNCTIONS: tuple[FunctionSpec, ...] = (WEBHOOK, SAMPLER, DEDUP, LABELER, EXPORTER)


def function(name: str) -> FunctionSpec:
    """The spec of the function called ``name``."""
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(f"no function {name!r}: {', '.join(spec.name for spec in FUNCTIONS)}")


def dead_letter_topics() -> tuple[str, ...]:
    """Every topic that holds messages given up on: the functions' own ``dead-letters``, and
    Pub/Sub's dead-letter topic of each push subscription."""
    return (
        Topics.DEAD_LETTERS,
        *(spec.dead_letter_topic(topic) for spec in FUNCTIONS for topic in spec.subscribes),
    )


def holding_subscription(topic: str) -> str:
    """The pull subscription that keeps what reaches a dead-letter topic, for operators and
    for replay: Pub/Sub drops a message published to a topic with no subscription."""
    return f"{topic}-held"


@dataclass(frozen=True)
class PushSettings:
    """How Pub/Sub pushes a topic's messages to a function: every push subscription alike (the
    limit on deliveries is :func:`pubsub_max_delivery_attempts`)."""

    # Pub/Sub's longest, over every function's timeout (540 s at most): a message is not pushed
    # again while a function is still working on it.
    ack_deadline_s: int
    # Pub/Sub's wait before pushing a message again, growing from the minimum to the maximum.
    minimum_backoff_s: int
    maximum_backoff_s: int
    # How long a message nobody acknowledged is kept; None: the Pub/Sub service's own default.
    retention_s: int | None = None


# As deployed (infra/): a message is kept 7 days, Pub/Sub's longest.
PUSH = PushSettings(
    ack_deadline_s=600, minimum_backoff_s=10, maximum_backoff_s=600, retention_s=7 * 24 * 3600
)
# The dev stack's (``framesift dev up``, the emulated tests): a backoff kept short for a laptop,
# where a test waits for the redelivery; the emulator's own retention.
DEV_PUSH = replace(PUSH, minimum_backoff_s=1, maximum_backoff_s=10, retention_s=None)


def pubsub_max_delivery_attempts(max_delivery_attempts: int) -> int:
    """Pub/Sub's own limit on a subscription's deliveries: a few more than the functions' own
    count (``FRAMESIFT_MAX_DELIVERY_ATTEMPTS``), so it catches only a function that dies before
    it can count, within the range Pub/Sub accepts."""
    return min(_PUBSUB_MAX_ATTEMPTS, max(_PUBSUB_MIN_ATTEMPTS, max_delivery_attempts + 2))
