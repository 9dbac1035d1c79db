"""Every failure framesift raises, in two families that decide what happens to a message.

- :class:`PermanentError`: retrying cannot fix it (a malformed event, a file that is not a
  video, a vendor refusing the request). :func:`framesift.delivery.deliver` dead-letters the
  message at once and acknowledges it; a stage that can record the failure on its document
  (a video ``failed`` with its reason) does so and returns instead of raising.
- :class:`TransientError`: a later attempt can succeed (a backend or vendor that is down or
  throttling, a conditional write that lost a race). Raised, so Pub/Sub redelivers with
  backoff; after ``max_delivery_attempts`` failures the message is dead-lettered too.

An exception outside both families (a bug) is treated as transient: counted, retried, and
dead-lettered at the limit, so it can never loop forever.
"""

from __future__ import annotations

from collections.abc import Sequence


class PermanentError(Exception):
    """A failure that retrying cannot fix: dead-letter the message and acknowledge it."""


class TransientError(Exception):
    """A failure a later attempt can fix: raise, so the message is redelivered."""


# --- Permanent ------------------------------------------------------------------------------


class BadEvent(PermanentError, ValueError):
    """An event or message that can never be processed (not the shape it must have)."""


class InvalidName(PermanentError, ValueError):
    """A name or id that cannot be stored as it is (a collector that is a path, an id Firestore
    refuses): retrying builds the same name, so it is dead-lettered at once with the reason
    (:mod:`framesift.naming`)."""


class UnreadableVideo(PermanentError):
    """ffmpeg cannot read the input as a video."""


class ObjectGone(PermanentError, LookupError):
    """The version of an object asked for is no longer there (replaced or deleted)."""

    def __init__(self, bucket: str, name: str, generation: int) -> None:
        super().__init__(f"{bucket}/{name} generation {generation} is no longer there")


class SamplingFailed(PermanentError):
    """ffmpeg stopped part-way through a video; frames yielded before this are good."""


class UnreadableImage(PermanentError, ValueError):
    """The bytes are not a complete image Pillow can decode."""


class VendorRejected(PermanentError):
    """The labeling vendor refused the request in a way no retry can fix (credentials,
    project, a malformed task)."""


class UnknownFrame(PermanentError, LookupError):
    """A vendor's callback names no frame, or a frame this deployment never sent to that
    vendor, or a task other than the one framesift created for the frame."""


class InvalidAnnotation(PermanentError, ValueError):
    """An annotation whose values cannot be labels: not finite, past the image's edge beyond
    the tolerance, a class outside the configured set, an impossible image size."""


class DocumentTooLarge(PermanentError, ValueError):
    """A document the store cannot hold even in parts: one item of its lists larger than a
    document, or more than one commit writes (:mod:`framesift.parts`)."""


class DocumentRefused(PermanentError, ValueError):
    """The document store refuses a write that no retry can change (Firestore's
    INVALID_ARGUMENT: a reserved field name such as ``__name__``, a value it cannot hold)."""


class CorruptIndex(PermanentError, ValueError):
    """A dedup index document no writer could have written (packed bytes of a wrong length, a
    field of another type), or a kept hash whose owner is not recorded: the frames whose lookup
    reads it cannot be decided until it is repaired (docs/operations.md)."""


class InvalidModel(PermanentError, ValueError):
    """A detector that cannot be used: not ONNX, outputs no decoder reads, no class names, or
    none of the labeling classes (``FRAMESIFT_MODEL_*``)."""


class InvalidPolicy(PermanentError, ValueError):
    """A selection policy that cannot be loaded (``FRAMESIFT_SELECTION_POLICY``)."""


# --- Transient ------------------------------------------------------------------------------


class BackendUnavailable(TransientError):
    """A backend (the document store, Pub/Sub) did not answer in time."""


class VendorUnavailable(TransientError):
    """The vendor failed in a way a later attempt can fix (429, 5xx, timeout, connection)."""


class SourceUnavailable(TransientError):
    """The video's bytes could not be fetched: the network, a server error, throttling, or
    access refused (a deployment fault, replayable once fixed); a later attempt can read them."""


class ToolUnavailable(TransientError):
    """A program a stage runs (ffmpeg) is missing or cannot start: a deployment fault, so the
    message is retried, then dead-lettered, and replayed once the deployment is fixed."""


class NotYetSent(TransientError, LookupError):
    """A callback for a frame whose task is not recorded yet (the labeler's write is still
    in flight): a later delivery finds it."""


class StillSampling(TransientError):
    """A telemetry sidecar uploaded while its video is being sampled: applied to the video's
    frames once it is sampled, on a later delivery."""


class NotFound(TransientError, LookupError):
    """The blob or document does not exist (yet: a redelivery may run before a writer's commit
    is visible to this reader, so it is retried up to the delivery limit)."""


class PreconditionFailed(TransientError):
    """The object's generation is not the one the write was conditional on (another writer
    won the race; the write is redone from a fresh read)."""


class ReadMore(TransientError):
    """Raised by a transaction's change when what it read names further documents to read.

    Not a failure: the document store reads ``keys`` in the same transaction and calls the
    change again with them added (:func:`framesift.ports.run_change`).
    """

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__(f"{len(keys)} more document(s) to read")
        self.keys = list(keys)
