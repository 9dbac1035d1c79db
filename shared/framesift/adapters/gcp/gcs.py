"""Cloud Storage through google-cloud-storage (``STORAGE_EMULATOR_HOST`` for the emulator):
the blob store, with V4 URLs signed through IAM signBlob when deployed."""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from framesift.errors import NotFound, ObjectGone, PreconditionFailed
from framesift.ports import (
    BlobInfo,
)


def _blob_info(blob: storage.Blob) -> BlobInfo:
    return BlobInfo(
        bucket=blob.bucket.name,
        name=blob.name,
        generation=int(blob.generation or 0),
        size=int(blob.size or 0),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )


RESUMABLE_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class _ReadCounter(io.RawIOBase):
    """A file that reports how many bytes were read from it (an upload's progress)."""

    def __init__(self, stream: BinaryIO, report: Callable[[int], None]) -> None:
        self._stream = stream
        self._report = report
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._sent += len(data)
        self._report(self._sent)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._stream.seek(offset, whence)
        self._sent = position
        return position

    def tell(self) -> int:
        return self._stream.tell()


class GcsBlobStore:
    def __init__(
        self,
        project: str,
        signed_url_minutes: int = 30,
        signer_service_account: str | None = None,
    ) -> None:
        self._emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if self._emulator:
            self._client = storage.Client(project=project, credentials=AnonymousCredentials())
        else:
            self._client = storage.Client(project=project)
        self._signed_url_ttl = timedelta(minutes=signed_url_minutes)
        self._signer = signer_service_account

    def stream_url(
        self,
        bucket: str,
        name: str,
        lifetime: timedelta | None = None,
        generation: int | None = None,
    ) -> str:
        blob = self._client.bucket(bucket).blob(name, generation=generation)
        if self._emulator:
            # The emulators serve media without auth; this is the object's media link.
            try:
                blob.reload()
            except gexc.NotFound as exc:
                if generation is None:
                    raise NotFound(f"{bucket}/{name}") from exc
                raise ObjectGone(bucket, name, generation) from exc
            return str(blob.media_link)
        # In Cloud Functions there is no key file: sign through the IAM signBlob API with the
        # function's own service account (it needs iam.serviceAccountTokenCreator on itself).
        credentials, _ = google.auth.default()
        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=lifetime or self._signed_url_ttl,
                method="GET",
                service_account_email=self._signer or credentials.service_account_email,
                access_token=credentials.token,
                generation=generation,
            )
        )

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        blob = self._client.bucket(bucket).blob(name)
        blob.metadata = dict(metadata or {})
        try:
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match
            )
        except gexc.PreconditionFailed as exc:
            raise PreconditionFailed(f"{bucket}/{name} changed") from exc
        return _blob_info(blob)

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> BlobInfo:
        # A chunk size makes it a resumable upload: a failed chunk is retried, not the file.
        blob = self._client.bucket(bucket).blob(name, chunk_size=RESUMABLE_CHUNK_BYTES)
        blob.metadata = dict(metadata)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with source.open("rb") as stream:
            blob.upload_from_file(
                _ReadCounter(stream, progress or (lambda _: None)),
                size=source.stat().st_size,
                content_type=content_type,
            )
        return _blob_info(blob)

    def get(self, bucket: str, name: str) -> bytes:
        try:
            return bytes(self._client.bucket(bucket).blob(name).download_as_bytes())
        except gexc.NotFound as exc:
            raise NotFound(f"{bucket}/{name}") from exc

    def stat(self, bucket: str, name: str) -> BlobInfo:
        blob = self._client.bucket(bucket).get_blob(name)
        if blob is None:
            raise NotFound(f"{bucket}/{name}")
        return _blob_info(blob)

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        for blob in self._client.list_blobs(bucket, prefix=prefix or None):
            yield _blob_info(blob)
