"""The edge agent: takes videos (a folder watched, paths given, or files announced on a queue),
and for each runs its steps, each recorded in the journal before the next:

1. ``hashed``: once the file has stopped growing (unchanged for ``stable_seconds``), its size
   and SHA-256; its object name is ``{collector}/{file name}`` and its generation the digest's
   first 60 bits (with bit 60 set), so its ids (video, frames) are fixed from here on, and
   the same bytes under the same name are the same video wherever they are sampled;
2. ``sifted``: sampled and deduplicated locally (:mod:`framesift.sift`) against its own frames
   and the local window's (the recent videos this edge kept, ``local_window_hours``);
3. ``recorded``: its document in the cloud, with its provenance, ``processing``;
4. each kept frame ``uploaded`` (JPEG and document), then ``published``: handed to the cloud's
   dedup as the sampler hands frames, so the dataset-wide decision is the cloud's, across
   edges, and labeling follows;
5. ``done``: its document final (``sampled`` or ``failed``, as the local sampler ended it).

A permanent failure (an unreadable file, a name the pipeline refuses) marks it ``failed`` with
why; a transient one (the deployment unreachable past the retries, a full disk) ``retry``, and
the agent goes on with the others and takes it up again on its next pass.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift import __version__
from framesift.bootstrap import Adapters
from framesift.config import Backend, Settings
from framesift.documents import FrameRecord, VideoRecord, VideoStatus
from framesift.edge.announcements import Announcements
from framesift.edge.failpoints import failpoint
from framesift.edge.journal import FINAL, Journal, VideoEntry, VideoState
from framesift.edge.throttle import TokenBucket
from framesift.edge.uploader import CloudUploader
from framesift.errors import PermanentError
from framesift.logs import bind_context, clear_context, get_logger
from framesift.naming import VIDEO_EXTENSIONS, upload_refusal
from framesift.provenance import SAMPLED_BY_EDGE, Provenance
from framesift.sift import SiftedVideo, Sifter

log = get_logger(__name__)

# The generation of an edge-sampled video: bit 60 set, then its SHA-256's first 60 bits (a
# positive INT64, far from Cloud Storage's microsecond timestamps).
_GENERATION_BIT = 1 << 60


@dataclass(frozen=True)
class EdgeConfig:
    edge_id: str
    collector: str
    state_dir: Path
    stable_seconds: float = 5.0
    max_upload_rate: float | None = None  # bytes per second
    retry_seconds: float = 300.0  # how long one cloud write is retried before the video waits
    local_window_hours: float = 24.0
    poll_seconds: float = 2.0


def generation_of(sha256: str) -> int:
    return _GENERATION_BIT | int(sha256[:15], 16)


class EdgeAgent:
    def __init__(
        self,
        config: EdgeConfig,
        settings: Settings,
        cloud: Adapters,
        published: Callable[[], object] | None = None,
    ) -> None:
        """``cloud``: the deployment's ports; ``published``: called once a video's frames are
        handed to its dedup (an embedded deployment drains its queue there)."""
        self.config = config
        self.settings = settings
        self.journal = Journal(config.state_dir / "journal.sqlite3")
        self._published = published
        self._uploader = CloudUploader(
            cloud,
            settings.frames_per_message,
            TokenBucket(config.max_upload_rate),
            config.retry_seconds,
        )
        self._sifters: dict[str, Sifter] = {}

    # Which files, and when.

    def offer(self, path: Path) -> VideoEntry | None:
        """Note ``path`` in the journal (new, or changed since it was seen); None if it is gone."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a symlink loop, an I/O error: recorded, never taken
            self.journal.seen(str(path), 0, 0)
            self._fail(str(path), f"unreadable: {exc}")
            return self.journal.video(str(path))
        return self.journal.seen(str(path), stat.st_size, stat.st_mtime_ns)

    def pending(self) -> list[VideoEntry]:
        return [entry for entry in self.journal.videos() if entry.state not in FINAL]

    def run(self, paths: Iterable[Path], until_done: bool = True) -> list[VideoEntry]:
        """Take the videos at ``paths`` (folders: the videos in them), passing over them until
        each is done or failed (``until_done``) or once; returns their journal entries."""
        files = [str(path) for path in _videos(paths)]
        while True:
            for path in files:
                self.offer(Path(path))
            self.process_pending()
            entries = [self.journal.video(path) for path in files]
            if not until_done or all(e is None or e.state in FINAL for e in entries):
                return [entry for entry in entries if entry is not None]
            time.sleep(self.config.poll_seconds)

    def watch(self, paths: Iterable[Path], passes: int | None = None) -> None:
        """Take every video that appears in ``paths`` (folders, recursively) once it stops
        growing; ``passes`` bounds the loop (None: until interrupted)."""

        def look() -> None:
            for path in _videos(paths):
                self.offer(path)

        self._passes(look, passes)

    def consume(self, announcements: Announcements, passes: int | None = None) -> None:
        """Take the files announced on a RabbitMQ queue (:mod:`framesift.edge.announcements`),
        each acknowledged once the journal has it; ``passes`` bounds the loop."""
        self._passes(lambda: announcements.take(self.offer, self.journal.rejected), passes)

    def _passes(self, look: Callable[[], object], passes: int | None) -> None:
        """``look`` for new files, then take every video pending, ``passes`` times (None: until
        interrupted), ``poll_seconds`` apart."""
        done = 0
        while passes is None or done < passes:
            look()
            self.process_pending()
            done += 1
            if passes is None or done < passes:
                time.sleep(self.config.poll_seconds)

    def process_pending(self) -> None:
        unfailed = self._fail_superseded()
        for entry in self.pending():
            if entry.path not in unfailed:  # its new version waits for the old one's record
                self.process(entry)
        self._forget_old_windows()

    def _fail_superseded(self) -> set[str]:
        """Fail in the cloud the documents of the versions the journal dropped for a newer
        one (their files changed once they were recorded), else they would stay
        ``processing``; returns the paths whose old version could not be failed yet."""
        unfailed: set[str] = set()
        for path, video_doc_id, reason in self.journal.versions_to_fail():
            copies = [
                entry
                for entry in self.journal.videos()
                if entry.video_doc_id == video_doc_id and entry.state is not VideoState.FAILED
            ]
            if copies:  # the same video at another path: its run ends (or ended) the document
                self.journal.version_settled(path, video_doc_id)
                continue
            try:
                self._uploader.fail(video_doc_id, reason)
            except Exception as exc:  # the deployment unreachable: the next pass tries again
                log.warning(
                    "a changed video's old version not failed yet: %s",
                    exc,
                    extra={"fields": {"edge_path": path, "video_doc_id": video_doc_id}},
                )
                unfailed.add(path)
                continue
            log.error(
                "video failed in the cloud: %s",
                reason,
                extra={"fields": {"edge_path": path, "video_doc_id": video_doc_id}},
            )
            self.journal.version_settled(path, video_doc_id)
        return unfailed

    def _window(self) -> str:
        return str(int(time.time() // (self.config.local_window_hours * 3600)))

    def _forget_old_windows(self) -> None:
        """Delete the local stores of windows before the last two that no unfinished video
        needs: the local dedup index remembers recent videos only (``local_window_hours``)."""
        current = int(self._window())
        needed = {entry.window for entry in self.pending()}
        for folder in (self.config.state_dir / "windows").glob("*"):
            old = folder.name.isdigit() and int(folder.name) < current - 1
            if old and folder.name not in needed:
                self._sifters.pop(folder.name, None)
                shutil.rmtree(folder)

    # One video's steps.

    def process(self, entry: VideoEntry) -> VideoEntry:
        """Take ``entry`` on from the last step its journal records, as far as it goes."""
        path = entry.path
        bind_context(edge_path=path, edge_id=self.config.edge_id)
        state = entry.next_state
        try:
            if state is VideoState.WAITING:
                state = self._hash(entry)
            if state is VideoState.HASHED:
                state = self._sift(self._entry(path))
            if state in (VideoState.SIFTED, VideoState.RECORDED, VideoState.PUBLISHED):
                state = self._upload(self._entry(path), state)
        except PermanentError as exc:
            self._fail(path, str(exc))
        except OSError as exc:
            self._os_error(path, exc)
        except Exception as exc:  # the deployment unreachable past the retries, and the like
            self._put_off(path, f"{type(exc).__name__}: {exc}")
        finally:
            clear_context()
        return self._entry(path)

    def _entry(self, path: str) -> VideoEntry:
        entry = self.journal.video(path)
        if entry is None:
            raise KeyError(f"{path} is not in the journal")
        return entry

    def _fail(self, path: str, reason: str) -> None:
        log.error("video failed at the edge: %s", reason)
        self.journal.failed(path, reason)

    def _put_off(self, path: str, reason: str) -> None:
        """A transient failure: the next pass goes on from the last step the journal has."""
        at = self._entry(path).next_state
        log.warning("video put off: %s", reason, extra={"fields": {"state": at.value}})
        self.journal.retry(path, at, reason)

    def _os_error(self, path: str, exc: OSError) -> None:
        at = self._entry(path).next_state
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            self._put_off(path, f"disk full in {self.config.state_dir}: {exc}")
        elif isinstance(exc, FileNotFoundError) and at is VideoState.WAITING:
            self._fail(path, f"gone before it was read: {exc}")
        elif at in (VideoState.WAITING, VideoState.HASHED):
            self._fail(path, f"unreadable: {exc}")
        else:
            self._put_off(path, f"{type(exc).__name__}: {exc}")

    def _hash(self, entry: VideoEntry) -> VideoState:
        path = Path(entry.path)
        settings = self.settings
        refusal = upload_refusal(
            path, self.config.collector, settings.raw_prefix, settings.images_prefix
        )
        if refusal is None and path.suffix.lower() not in VIDEO_EXTENSIONS:
            refusal = f"extension {path.suffix!r} is not a video's"
        if refusal:
            raise PermanentError(refusal)
        age = time.time() - entry.mtime_ns / 1e9
        if age < self.config.stable_seconds:
            self.journal.note(
                entry.path,
                f"still being written: changed {age:.1f} s ago (taken once unchanged for "
                f"{self.config.stable_seconds:g} s)",
            )
            return VideoState.WAITING
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
            self.offer(path)  # written to meanwhile: waits again
            return VideoState.WAITING
        sha256 = digest.hexdigest()
        generation = generation_of(sha256)
        window = self._window()
        doc_id = self._sifter(window).video_doc_id(path, self.config.collector, generation)
        failpoint("hashed")
        self.journal.hashed(entry.path, sha256, generation, window, doc_id)
        return VideoState.HASHED

    def _sifter(self, window: str) -> Sifter:
        if window not in self._sifters:
            local = self.settings.model_copy(
                update={
                    "backend": Backend.EMBEDDED,
                    "workdir": self.config.state_dir / "windows" / window,
                }
            )
            self._sifters = {window: Sifter(local, between=lambda: failpoint("mid-sift"))}
        return self._sifters[window]

    def _sifted(self, entry: VideoEntry) -> SiftedVideo:
        """The video as sifted locally (sifted again if its window's store was lost)."""
        if not (entry.window and entry.video_doc_id and entry.generation):
            raise KeyError(f"{entry.path} was not hashed: nothing to sift")
        sifter = self._sifter(entry.window)
        done = sifter.read(entry.video_doc_id)
        if done is None:
            done = sifter.sift(Path(entry.path), self.config.collector, entry.generation)
        return done

    def _sift(self, entry: VideoEntry) -> VideoState:
        sifted = self._sifted(entry)
        failpoint("sifted")
        kept = [(frame["id"], int(frame["timestamp_ms"])) for frame in sifted.kept]
        self.journal.sifted(entry.path, len(sifted.frames), kept)
        log.info(
            "video sifted",
            extra={"fields": {"frames": len(sifted.frames), "kept": len(kept)}},
        )
        return VideoState.SIFTED

    def _provenance(self, entry: VideoEntry) -> dict[str, Any]:
        settings = self.settings
        return Provenance(
            sampled_by=SAMPLED_BY_EDGE,
            edge_id=self.config.edge_id,
            source_path=entry.path,
            source_size_bytes=entry.size,
            source_sha256=entry.sha256,
            sampling_settings={
                "policy": settings.sampling_policy().model_dump(mode="json"),
                "jpeg_quality": settings.jpeg_quality,
                "dedup_threshold": settings.dedup_threshold,
                "dedup_layout_threshold": settings.dedup_layout_threshold,
                "dedup_scope": settings.dedup_scope.value,
                "local_window_hours": self.config.local_window_hours,
            },
            framesift_version=__version__,
        ).model_dump()

    def _upload(self, entry: VideoEntry, state: VideoState) -> VideoState:
        sifted = self._sifted(entry)
        provenance = self._provenance(entry)
        video = VideoRecord.model_validate({**sifted.video, **provenance})
        uploader = self._uploader
        path = entry.path
        if state is VideoState.SIFTED:
            processing = video.model_copy(update={"status": VideoStatus.PROCESSING, "error": None})
            sent = uploader.record_video(processing)
            failpoint("video-recorded")
            self.journal.advance(path, VideoState.RECORDED, sent)
            state = VideoState.RECORDED
        kept = {
            frame["id"]: FrameRecord.model_validate({**frame, **provenance})
            for frame in sifted.kept
        }
        if state is VideoState.RECORDED:
            local = self._sifter(str(entry.window)).pipeline.blobs
            # Every frame published is uploaded first (dedup merges its decision into the
            # frame's document, which must exist): each the sift keeps, whether or not the
            # journal listed it, unless this path or another with the same video sent it.
            for frame in kept.values():
                uploaded_from = self.journal.uploaded_from(frame.id)
                if path in uploaded_from:
                    continue
                sent = 0 if uploaded_from else uploader.upload_frame(local, frame)
                failpoint("frame-recorded")
                self.journal.uploaded(path, frame.id, frame.timestamp_ms, sent)
            sent = uploader.publish(video, list(kept.values()), damaged=sifted.failed)
            if self._published is not None:
                self._published()
            failpoint("published")
            self.journal.advance(path, VideoState.PUBLISHED, sent)
            state = VideoState.PUBLISHED
        sent = uploader.finish(video)
        failpoint("finished")
        self.journal.advance(path, VideoState.DONE, sent)
        # Its local JPEGs and copy are not needed again (the local index keeps its hashes).
        pipeline = self._sifter(str(entry.window)).pipeline
        pipeline.blobs.remove(pipeline.settings.frames_bucket, f"{video.collector}/{video.id}/")
        pipeline.blobs.remove(pipeline.settings.raw_bucket, video.object_name)
        log.info(
            "video done at the edge",
            extra={"fields": {"video_doc_id": video.id, "kept": len(kept)}},
        )
        return VideoState.DONE


def _videos(paths: Iterable[Path]) -> list[Path]:
    """The files named, and the videos in the folders named (recursively, in name order)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            found.append(path)
    return found
