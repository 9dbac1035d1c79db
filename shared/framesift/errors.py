"""The two kinds of failure every stage tells apart: worth retrying, or not."""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that retrying cannot fix: dead-letter the message and acknowledge it."""


class BackendUnavailable(Exception):
    """A backend (the document store, Pub/Sub) did not answer in time; a redelivery can succeed."""


class VendorUnavailable(Exception):
    """The vendor failed in a way a later attempt can fix (429, 5xx, timeout, connection)."""


class VendorRejected(PermanentError):
    """The vendor refused the request in a way no retry can fix (credentials, project)."""
