"""What a stage does with an upload it will not process: it says why in a document of
``ignored_uploads`` (exported like the rest), so an operator sees it beside the videos, not
only in a log line. Recorded once, whatever the redeliveries."""

from __future__ import annotations

from framesift.documents import IgnoredUpload
from framesift.events import GcsObject
from framesift.logs import get_logger
from framesift.ports import DocumentStore
from framesift.topology import Collections

log = get_logger(__name__)


def record_ignored(documents: DocumentStore, obj: GcsObject, reason: str, by: str) -> None:
    upload = IgnoredUpload(
        id=IgnoredUpload.make_id(obj.bucket, obj.name, obj.generation),
        bucket=obj.bucket,
        object_name=obj.name,
        generation=obj.generation,
        size_bytes=obj.size,
        reason=reason,
        ignored_by=by,
    )
    documents.create(Collections.IGNORED_UPLOADS, upload.id, upload.stored())
    log.warning(
        "upload ignored: %s",
        reason,
        extra={"fields": {"bucket": obj.bucket, "object": obj.name}},
    )
