"""The edge agent's journal: one SQLite file in its state folder recording, per video and per
kept frame, the steps done. It is the resume point: after a crash the agent goes on from the
last step recorded, and redoes at most the step it was in, whose cloud writes are idempotent
(deterministic ids, create-if-absent, the same bytes at the same name), so nothing is lost
and nothing doubled.

A video's states, in order (:class:`VideoState`): ``waiting`` (seen; its size or time still
changing), ``hashed`` (size and SHA-256 read: its ids are fixed), ``sifted`` (sampled and
deduplicated locally; its kept frames listed), ``recorded`` (its document in the cloud),
``published`` (every kept frame uploaded and handed to the cloud's dedup), ``done``; or
``failed`` (a permanent reason: it will not be tried again) or ``retry`` (a transient one: a
network outage, a full disk; tried again later). A kept frame is ``kept`` then ``uploaded``.
A file changed after its video's document was created (``recorded``, ``published``) is a new
version: the old one is kept with why (``superseded_versions``) until the agent has failed its
document in the cloud (else it would stay ``processing``). Announcements from a queue that named
no file are kept with why (``rejected_announcements``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class VideoState(StrEnum):
    WAITING = "waiting"
    HASHED = "hashed"
    SIFTED = "sifted"
    RECORDED = "recorded"
    PUBLISHED = "published"
    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"


FINAL = (VideoState.DONE, VideoState.FAILED)
# Its document created in the cloud, not final yet.
IN_THE_CLOUD = (VideoState.RECORDED, VideoState.PUBLISHED)
SOURCE_CHANGED = "source changed while it was uploaded: taken again as a new version"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    path TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    seen_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    sha256 TEXT,
    generation INTEGER,
    window TEXT,
    video_doc_id TEXT,
    resume_state TEXT,
    frames_sampled INTEGER,
    frames_kept INTEGER,
    bytes_uploaded INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS frames (
    path TEXT NOT NULL,
    frame_id TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    bytes INTEGER,
    -- One video's bytes at two paths are one video, its frames the same frames: each path
    -- keeps its own rows, so neither takes the other's for its own.
    PRIMARY KEY (path, frame_id)
);
CREATE INDEX IF NOT EXISTS frames_by_path ON frames (path, timestamp_ms);
CREATE INDEX IF NOT EXISTS frames_by_id ON frames (frame_id);
CREATE TABLE IF NOT EXISTS superseded_versions (
    path TEXT NOT NULL,
    video_doc_id TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (path, video_doc_id)
);
CREATE TABLE IF NOT EXISTS rejected_announcements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class VideoEntry:
    path: str
    state: VideoState
    size: int
    mtime_ns: int
    seen_at: float
    updated_at: float
    sha256: str | None
    generation: int | None
    window: str | None
    video_doc_id: str | None
    # A video in ``retry``: the state it goes on from.
    resume_state: VideoState | None
    frames_sampled: int | None
    frames_kept: int | None
    bytes_uploaded: int
    error: str | None
    attempts: int

    @property
    def next_state(self) -> VideoState:
        """The state its next attempt starts from."""
        if self.state is VideoState.RETRY:
            return self.resume_state or VideoState.WAITING
        return self.state


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each write below is one statement or one explicit transaction, on disk
        # (WAL, synchronous FULL) before the agent takes its next step.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def video(self, path: str) -> VideoEntry | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM videos WHERE path = ?",  # noqa: S608
            (path,),
        ).fetchone()
        return _entry(row) if row else None

    def videos(self, states: Sequence[VideoState] | None = None) -> list[VideoEntry]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM videos ORDER BY seen_at, path").fetchall()  # noqa: S608
        entries = [_entry(row) for row in rows]
        return [e for e in entries if states is None or e.state in states]

    def seen(self, path: str, size: int, mtime_ns: int) -> VideoEntry:
        """Record a file seen at ``size`` and ``mtime_ns``: new, or changed since (a file
        rewritten after it was done is a new version, taken again; one rewritten once its
        document was created leaves that version in ``superseded_versions``)."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT size, mtime_ns, state, resume_state, video_doc_id FROM videos"
                " WHERE path = ?",
                (path,),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO videos (path, state, size, mtime_ns, seen_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (path, VideoState.WAITING, size, mtime_ns, now, now),
                )
            elif (row[0], row[1]) != (size, mtime_ns):
                at = row[3] if row[2] == VideoState.RETRY else row[2]
                if at in IN_THE_CLOUD:
                    db.execute(
                        "INSERT OR REPLACE INTO superseded_versions"
                        " (path, video_doc_id, at, reason) VALUES (?, ?, ?, ?)",
                        (path, row[4], now, SOURCE_CHANGED),
                    )
                db.execute("DELETE FROM frames WHERE path = ?", (path,))
                db.execute(
                    "UPDATE videos SET state = ?, size = ?, mtime_ns = ?, seen_at = ?,"
                    " updated_at = ?, sha256 = NULL, generation = NULL, window = NULL,"
                    " video_doc_id = NULL, resume_state = NULL, frames_sampled = NULL,"
                    " frames_kept = NULL, bytes_uploaded = 0, error = NULL, attempts = 0"
                    " WHERE path = ?",
                    (VideoState.WAITING, size, mtime_ns, now, now, path),
                )
        entry = self.video(path)
        if entry is None:
            raise KeyError(path)  # written above, in this connection
        return entry

    def note(self, path: str, error: str) -> None:
        """Why a waiting video is not taken yet (still being written)."""
        self._update(path, error=error)

    def hashed(self, path: str, sha256: str, generation: int, window: str, doc_id: str) -> None:
        self._update(
            path,
            state=VideoState.HASHED,
            sha256=sha256,
            generation=generation,
            window=window,
            video_doc_id=doc_id,
            error=None,
        )

    def sifted(self, path: str, frames_sampled: int, kept: Sequence[tuple[str, int]]) -> None:
        """The local sift's outcome: ``kept`` are the (frame id, timestamp) to upload."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO frames (frame_id, path, timestamp_ms, state)"
                " VALUES (?, ?, ?, 'kept')",
                [(frame_id, path, timestamp) for frame_id, timestamp in kept],
            )
            self._set(
                db,
                path,
                state=VideoState.SIFTED,
                frames_sampled=frames_sampled,
                frames_kept=len(kept),
                error=None,
            )

    def uploaded_from(self, frame_id: str) -> set[str]:
        """The paths whose video uploaded frame ``frame_id`` (the same bytes under the same
        name at two paths are one video, with the same frames)."""
        rows = self._db.execute(
            "SELECT path FROM frames WHERE frame_id = ? AND state = 'uploaded'", (frame_id,)
        ).fetchall()
        return {row[0] for row in rows}

    def frames(self, path: str) -> list[tuple[str, str]]:
        """Each kept frame of the video and its state, in time order."""
        rows = self._db.execute(
            "SELECT frame_id, state FROM frames WHERE path = ? ORDER BY timestamp_ms", (path,)
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def uploaded(self, path: str, frame_id: str, timestamp_ms: int, size: int) -> None:
        """The video at ``path`` uploaded a kept frame (``size`` bytes sent): one its sift
        listed, or one a sift again kept besides (its window's store was lost)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO frames (path, frame_id, timestamp_ms, state, bytes)"
                " VALUES (?, ?, ?, 'uploaded', ?) ON CONFLICT (path, frame_id)"
                " DO UPDATE SET state = 'uploaded', bytes = excluded.bytes",
                (path, frame_id, timestamp_ms, size),
            )
            db.execute(
                "UPDATE videos SET bytes_uploaded = bytes_uploaded + ?, updated_at = ?"
                " WHERE path = ?",
                (size, time.time(), path),
            )

    def advance(self, path: str, state: VideoState, uploaded: int = 0) -> None:
        """The video reached ``state`` (``uploaded``: bytes sent by that step)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE videos SET bytes_uploaded = bytes_uploaded + ? WHERE path = ?",
                (uploaded, path),
            )
            self._set(db, path, state=state, error=None)

    def failed(self, path: str, error: str) -> None:
        self._update(path, state=VideoState.FAILED, error=error)

    def retry(self, path: str, at: VideoState, error: str) -> None:
        """A transient failure at state ``at``: the next attempt goes on from there."""
        with self._transaction() as db:
            db.execute("UPDATE videos SET attempts = attempts + 1 WHERE path = ?", (path,))
            self._set(db, path, state=VideoState.RETRY, resume_state=at, error=error)

    def versions_to_fail(self) -> list[tuple[str, str, str]]:
        """The versions superseded whose documents are still to fail in the cloud: (path,
        video doc id, why)."""
        rows = self._db.execute(
            "SELECT path, video_doc_id, reason FROM superseded_versions"
            " WHERE settled = 0 ORDER BY at"
        ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def version_settled(self, path: str, video_doc_id: str) -> None:
        """The superseded version's document needs nothing more: ``failed`` in the cloud, or
        ended by another path's copy of the same video."""
        self._db.execute(
            "UPDATE superseded_versions SET settled = 1 WHERE path = ? AND video_doc_id = ?",
            (path, video_doc_id),
        )

    def superseded_versions(self) -> list[tuple[float, str, str, str]]:
        """The versions failed for a newer one, oldest first: (when, path, video doc id, why)."""
        rows = self._db.execute(
            "SELECT at, path, video_doc_id, reason FROM superseded_versions ORDER BY at"
        ).fetchall()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def rejected(self, body: str, reason: str) -> None:
        """An announcement that named no file (dead-lettered on its queue), and why."""
        self._db.execute(
            "INSERT INTO rejected_announcements (at, body, reason) VALUES (?, ?, ?)",
            (time.time(), body, reason),
        )

    def rejections(self) -> list[tuple[float, str, str]]:
        """The announcements rejected, oldest first: (when, body, why)."""
        rows = self._db.execute(
            "SELECT at, body, reason FROM rejected_announcements ORDER BY id"
        ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def _update(self, path: str, **values: object) -> None:
        with self._transaction() as db:
            self._set(db, path, **values)

    @staticmethod
    def _set(db: sqlite3.Connection, path: str, **values: object) -> None:
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{name} = ?" for name in values)
        db.execute(
            f"UPDATE videos SET {assignments} WHERE path = ?",  # noqa: S608
            (*values.values(), path),
        )


_FIELDS = [
    "path",
    "state",
    "size",
    "mtime_ns",
    "seen_at",
    "updated_at",
    "sha256",
    "generation",
    "window",
    "video_doc_id",
    "resume_state",
    "frames_sampled",
    "frames_kept",
    "bytes_uploaded",
    "error",
    "attempts",
]
_COLUMNS = ", ".join(_FIELDS)


def _entry(row: Sequence[object]) -> VideoEntry:
    values = dict(zip(_FIELDS, row, strict=True))
    values["state"] = VideoState(str(values["state"]))
    if values["resume_state"] is not None:
        values["resume_state"] = VideoState(str(values["resume_state"]))
    return VideoEntry(**values)  # type: ignore[arg-type]
