"""The small interfaces the stages talk to. Each has one adapter per backend (gcp, embedded)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from framesift.errors import ReadMore

if TYPE_CHECKING:
    from framesift.detection import Detection
    from framesift.documents import Box

T = TypeVar("T")
P = TypeVar("P")
DocKey = tuple[str, str]  # (collection, document id)
# Given the documents read (None where absent), the writes to make (merged into each document,
# created if absent) and the result to return.
Change = Callable[[dict[DocKey, dict[str, Any] | None]], tuple[dict[DocKey, dict[str, Any]], T]]


UPDATED_AT = "updated_at"


class Lazy(Generic[P]):
    """A port built by ``make`` on first use, once, whichever thread asks first: deployed, a
    function builds at cold start only the clients its stage touches."""

    def __init__(self, make: Callable[[], P]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: P | None = None

    def get(self) -> P:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


def stamped(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``updated_at`` set to now: every adapter stamps every write with it, so the
    exporter can read what changed since a watermark, whichever stage wrote it."""
    return {**data, UPDATED_AT: datetime.now(UTC)}


def run_change(
    change: Change[T],
    docs: dict[DocKey, dict[str, Any] | None],
    read: Callable[[list[DocKey]], dict[DocKey, dict[str, Any] | None]],
) -> tuple[dict[DocKey, dict[str, Any]], T]:
    """Call ``change``, reading (with ``read``, in the caller's transaction) what it asks for."""
    while True:
        try:
            return change(docs)
        except ReadMore as more:
            missing = [key for key in more.keys if key not in docs]
            if not missing:
                raise RuntimeError("a change asked again for documents it was given") from more
            docs.update(read(missing))


@dataclass(frozen=True)
class BlobInfo:
    bucket: str
    name: str
    generation: int
    size: int
    content_type: str | None
    metadata: Mapping[str, str]


class BlobStore(Protocol):
    def stream_url(
        self,
        bucket: str,
        name: str,
        lifetime: timedelta | None = None,
        generation: int | None = None,
    ) -> str:
        """A URL or path a reader (ffmpeg, a labeling vendor) can read the object from without
        credentials and without it being copied first; signed URLs live ``lifetime``. With
        ``generation``, that version only: a newer upload under the same name is not read in
        its place (Cloud Storage answers 404 once it is replaced; a store that can tell before
        raises :class:`~framesift.errors.ObjectGone`)."""
        ...

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        """Write the object; with ``if_generation_match`` only if its generation is that one
        (0: only if it does not exist), else raise PreconditionFailed (a compare-and-swap)."""
        ...

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> BlobInfo:
        """Upload a local file without reading it into memory (resumably, on GCS), reporting
        the bytes sent so far to ``progress``."""
        ...

    def get(self, bucket: str, name: str) -> bytes: ...

    def stat(self, bucket: str, name: str) -> BlobInfo:
        """Raises NotFound."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Publish and wait until the backend accepted it; returns the message id."""
        ...


@dataclass(frozen=True)
class HeldMessage:
    data: bytes
    attributes: Mapping[str, str]
    ack_id: str


class HeldMessages(Protocol):
    """A pull subscription holding messages (Pub/Sub's dead letters) until they are taken."""

    def pull(self, subscription: str, limit: int) -> list[HeldMessage]:
        """Up to ``limit`` held messages; none left when it returns an empty list."""
        ...

    def take(self, subscription: str, messages: Sequence[HeldMessage]) -> None:
        """Remove ``messages`` from the subscription (acknowledge them)."""
        ...


@dataclass(frozen=True)
class LabelingRequest:
    """A kept frame to be labeled, as every vendor needs it."""

    frame_id: str
    image_url: str  # what the vendor loads the image from (a signed URL, gs:// or a path)
    gcs_uri: str  # gs://bucket/object, the frame's permanent address
    width: int | None
    height: int | None
    metadata: Mapping[str, Any]
    # The model's pre-label, when a model is configured: its boxes (pixels and fractions, with
    # scores), its version and how unsure it is of the frame.
    prelabels: Sequence[Box] = ()
    model_version: str | None = None
    uncertainty: float | None = None


@dataclass(frozen=True)
class LabelingTask:
    frame_id: str
    task_id: str


class LabelingVendor(Protocol):
    name: str

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        """Create one task per frame unless it exists already (the frame id is the key).

        Raises :class:`~framesift.errors.VendorUnavailable` for a failure worth retrying, and
        :class:`~framesift.errors.VendorRejected` for one that retrying cannot fix.
        """
        ...


class Detector(Protocol):
    """An object detector, loaded once per instance."""

    version: str  # what its pre-labels are stored and sent under
    classes: Sequence[str]  # its class names, by class index

    def detect(self, image: bytes) -> list[Detection]:
        """The boxes it finds on a JPEG or PNG frame, scoring at least its confidence floor,
        in the frame's pixels."""
        ...


class DocumentStore(Protocol):
    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The documents of ``doc_ids`` that exist, by id, in a few batched reads."""
        ...

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create the document if absent. True if this call created it, False if it existed."""
        ...

    def merge(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Upsert: set the given top-level fields, keep the others (and stamp updated_at)."""
        ...

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        """All documents whose top-level ``field`` equals ``value``."""
        ...

    def changed_since(self, collection: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        """The documents whose ``updated_at`` is at or after ``since`` (all if None), oldest
        first, each with its id as ``_id``."""
        ...

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        """Read ``keys``, apply ``change`` and write its result as one serializable transaction.

        Two transactions that read a common document never both commit on stale reads: one
        is retried (Firestore) or waits (SQLite), so ``change`` may run more than once. A change
        that needs documents it could not name up front raises :class:`ReadMore`.
        """
        ...


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery standard SQL type: STRING, INT64, FLOAT64, BOOL, TIMESTAMP
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: Sequence[Column]
    key: str = "id"
    partition_by: str | None = None  # a TIMESTAMP column, partitioned by day
    cluster_by: Sequence[str] = ()


class Warehouse(Protocol):
    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        """Create the tables if missing (idempotent), in a dataset that exists: on BigQuery the
        infra (or the dev stack) creates it, not a function."""
        ...

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        """Stage the rows, then MERGE them in by key, keeping the row with the newest updated_at."""
        ...

    def ensure_views(self, views: Mapping[str, str]) -> None:
        """Create or replace views ``{name: SQL}`` (``{dataset}`` stands for the dataset)."""
        ...

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL in which ``{dataset}`` stands for the warehouse's dataset."""
        ...
