"""Which version of an annotation wins, and a vendor's deleted task: the rules
:mod:`framesift.annotations` stores by and ``framesift reconcile`` compares with.

A newer vendor ``updated_at`` replaces an older one. A deletion keeps the vendor's last time and
records its evidence (:class:`~framesift.documents.DeletedBy`, ``deleted_at``), never a
framesift clock as the vendor's: the vendor's own deletion is final; a deletion by absence
(missing from the project's export read at ``deleted_at``) removes only a version older than
that read, and a later read showing the annotation (``observed_at``) restores it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from framesift.documents import AnnotationStatus, DeletedBy, utcnow

_EPOCH = "1970-01-01T00:00:00+00:00"


class TaskDeleted(BaseModel):
    """A vendor's word that a task is gone (Label Studio's ``TASKS_DELETED``): the annotations
    stored for it are tombstoned and its frame is marked ``labeling_task_deleted``
    (:func:`framesift.annotations.delete_task`)."""

    vendor: str
    task_id: str
    deleted_by: DeletedBy
    deleted_at: datetime = Field(default_factory=utcnow)


def supersedes(new: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether ``new`` (a record's fields) replaces the stored version of its annotation (the
    module's "which version wins")."""
    if new.get("status") == AnnotationStatus.DELETED:
        if stored.get("status") == AnnotationStatus.DELETED:
            return False
        if new.get("deleted_by") == DeletedBy.ABSENT:
            return _moment(new.get("deleted_at")) > version(stored)
        return True  # the vendor's own word: it never brings a deleted annotation back
    if stored.get("status") == AnnotationStatus.DELETED:
        if stored.get("deleted_by") in (DeletedBy.VENDOR, DeletedBy.TASK_DELETED):
            return False  # final: a late or replayed version must not bring it back
        # Deleted by absence, or before deletions kept their evidence (then at its
        # vendor_updated_at, our clock): a version seen since restores it.
        gone = _moment(stored.get("deleted_at") or stored.get("vendor_updated_at"))
        return max(version(new), _moment(new.get("observed_at"))) > gone
    return version(new) > version(stored)


def version(doc: dict[str, Any]) -> datetime:
    """The vendor's timestamp of a stored or incoming record."""
    return _moment(doc.get("vendor_updated_at"))


def _moment(value: Any) -> datetime:
    """A stored time (stores give datetimes or text; none is the epoch), aware."""
    value = value or _EPOCH
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
