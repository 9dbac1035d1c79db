"""The bundle's Pub/Sub functions as Beam steps: each step is the function's own subscriber
(:class:`framesift.bootstrap.Subscriber`: its stage, its delivery rules, its dead letters),
built once per worker in ``setup()`` through the composition root, over the deployment's
adapters but for one port: what the stage publishes to a topic the pipeline carries comes out
of the step as an element instead, tagged with the topic.

Retries: where Pub/Sub would redeliver a message whose handling failed, the step delivers it
again itself (with backoff), up to ``FRAMESIFT_MAX_DELIVERY_ATTEMPTS``, when
:func:`framesift.delivery.deliver` dead-letters it as the function would; so one bad message
never fails the pipeline. A bundle the runner re-executes hands the stages the same messages
again (same ids, derived from their content), which their idempotency absorbs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import apache_beam as beam
from pydantic import SecretStr
from tenacity import Retrying, stop_after_attempt, wait_random_exponential

from framesift import bootstrap
from framesift.config import Settings
from framesift.events import PubSubMessage
from framesift.ports import Lazy, Publisher
from framesift.stages.dedup import BatchResult
from framesift.stages.labeler import LabelResult
from framesift.stages.sampler import Outcome, SampleResult
from framesift.topology import PUSH

# The counters a run reports (Beam metrics, summed over workers), in this namespace.
METRICS = "framesift"


@dataclass(frozen=True)
class Message:
    """A Pub/Sub message as it travels between two steps; its id is derived from its content,
    so a step that re-runs publishes the same message, as a redelivery does."""

    topic: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        content = json.dumps([self.topic, sorted(self.attributes.items())]).encode() + self.data
        return hashlib.sha256(content).hexdigest()[:32]

    def delivered(self) -> PubSubMessage:
        return PubSubMessage.of(self.data, self.attributes, self.message_id)


class Outbox:
    """The Publisher port of a function run as a step: messages to the topics the pipeline
    carries are held for the step to emit; any other (dead letters, frames to the deployed
    labeler) goes to the deployment's publisher."""

    def __init__(self, carried: frozenset[str], deployment: Lazy[Publisher]) -> None:
        self._carried = carried
        self._deployment = deployment
        self._held: dict[str, Message] = {}

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        if topic not in self._carried:
            return self._deployment.get().publish(topic, data, attributes)
        message = Message(topic, data, dict(attributes or {}))
        # Published again by a retried delivery: one element, as one Pub/Sub message would be
        # delivered again anyway.
        self._held[message.message_id] = message
        return message.message_id

    def take(self) -> list[Message]:
        held, self._held = list(self._held.values()), {}
        return held


def _secret_fields() -> frozenset[str]:
    return frozenset(
        name
        for name, spec in Settings.model_fields.items()
        if SecretStr in (spec.annotation, *get_args(spec.annotation))
    )


@dataclass(frozen=True)
class WorkerSettings:
    """The settings a step carries to its workers, without the secrets: a runner stores the
    job's graph (Dataflow keeps it with the job), so each worker reads its secrets from its own
    environment (``FRAMESIFT_*``), as a deployed function does."""

    values: Mapping[str, Any]

    @classmethod
    def of(cls, settings: Settings) -> WorkerSettings:
        return cls(settings.model_dump(exclude=set(_secret_fields())))

    def load(self) -> Settings:
        return Settings(**self.values)


def count(result: Any) -> None:
    """A handler's result as the run's counters (the embedded run's summary, per worker)."""
    counter = beam.metrics.Metrics.counter
    if isinstance(result, SampleResult):
        if result.outcome in (Outcome.SAMPLED, Outcome.FAILED):  # the video's last word
            counter(METRICS, f"videos_{result.outcome.value}").inc()
            counter(METRICS, "frames_sampled").inc(result.frames)
        elif result.outcome is not Outcome.SEGMENTED:  # a video's or a segment's
            counter(METRICS, f"sampler_{result.outcome.value}").inc()
    elif isinstance(result, BatchResult):
        counter(METRICS, "frames_kept").inc(result.kept)
        counter(METRICS, "frames_dropped").inc(result.dropped)
    elif isinstance(result, LabelResult):
        counter(METRICS, "labeling_requested").inc(result.requested)


class _Step(beam.DoFn):
    """The Pub/Sub function ``function`` of the bundle, as a step: input messages are delivered
    to it; each message it publishes to a ``carried`` topic is output, tagged with the topic."""

    def __init__(self, function: str, settings: WorkerSettings, carried: frozenset[str]) -> None:
        self._function = function
        self._settings = settings
        self._carried = carried

    def setup(self) -> None:
        settings = self._settings.load()
        deployed = bootstrap.build_adapters(settings)
        self._outbox = Outbox(self._carried, Lazy(lambda: deployed.publisher))
        adapters = bootstrap.Adapters(
            blobs=Lazy(lambda: deployed.blobs),
            publisher=self._outbox,
            documents=Lazy(lambda: deployed.documents),
            warehouse=Lazy(lambda: deployed.warehouse),
        )
        self._subscriber = bootstrap.Subscriber(
            self._function,
            adapters,
            settings,
            on_result=count,
        )
        self._attempts = settings.max_delivery_attempts

    def _deliver(self, messages: Iterable[Message]) -> Iterator[Any]:
        for message in messages:
            retrying = Retrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(max=PUSH.maximum_backoff_s),
                reraise=True,
            )
            for attempt in retrying:
                with attempt:
                    result = self._subscriber.receive(message.delivered, message.topic)
            if result is None:  # dead-lettered (or not even a message): the function gave up
                beam.metrics.Metrics.counter(METRICS, "given_up").inc()
        for out in self._outbox.take():
            yield beam.pvalue.TaggedOutput(out.topic, out)


class FunctionStep(_Step):
    """A function given each message as it comes."""

    def process(self, message: Message) -> Iterator[Any]:
        yield from self._deliver([message])


class OrderedFunctionStep(_Step):
    """A function given one source's messages at a time, in the order the functions path
    publishes them (its batch ids sort as segment, then batch): dedup decides a video's frames
    in the order the embedded pipeline does, so its decisions are the same."""

    def process(self, keyed: tuple[str, Iterable[Message]]) -> Iterator[Any]:
        _, messages = keyed
        in_order = sorted(messages, key=lambda m: m.attributes.get("batch_id", ""))
        yield from self._deliver(in_order)


def source_of(message: Message) -> str:
    """The video (or photo) a message concerns: a frame batch names its video, a bucket
    notification its object."""
    attributes = message.attributes
    return attributes.get("video_doc_id") or attributes.get("objectId") or ""
