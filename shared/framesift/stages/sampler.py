"""Sampler stage: a video's OBJECT_FINALIZE notification in, JPEG frames and frame records out.

A notification is probed and planned into segments. A short video is one segment, sampled in the
same invocation; a long one is cut into segments of about ``segment_seconds``, each published to
the video-segments topic and sampled by its own invocation, so no invocation runs into the
540 s limit and a crash repeats one segment, not the whole video. When every segment is
finished the video is ``sampled`` (or ``failed``, keeping the frames decoded before the error).

Exactly-once effects under at-least-once delivery: the video document's id is derived from
bucket, object name and generation and is created only if absent, and so is each segment's;
frame object names and frame ids are derived from the video and the frame's timestamp, so a
repeated segment rewrites the same objects with the same bytes. A video or segment already
finished is not processed again; one left ``processing`` by a crashed attempt is redone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import PurePosixPath

from framesift import media
from framesift.capture import video_capture
from framesift.documents import (
    VIDEO_FINISHED,
    SegmentRecord,
    SegmentStatus,
    VideoRecord,
    VideoStatus,
    create_or_get,
)
from framesift.errors import BadEvent, ObjectGone, SamplingFailed, UnreadableVideo
from framesift.events import OBJECT_FINALIZE, GcsNotification, GcsObject, PubSubMessage
from framesift.gpmf import parse_gpmf
from framesift.logs import bind_context, get_logger
from framesift.messages import SEGMENT_MESSAGE, SampledFrame, SegmentTask
from framesift.naming import VIDEO_EXTENSIONS, UploadName, is_photo, parse_upload_name
from framesift.ports import BlobStore, DocumentStore, Publisher
from framesift.sampling import SamplingPolicy
from framesift.stages.frame_output import FrameOutput
from framesift.stages.segment_plan import probed_fields, segment_record, segment_tasks, too_large
from framesift.stages.sidecars import SidecarPlacer, find_sidecar, read_sidecar
from framesift.stages.uploads import record_ignored
from framesift.topology import SAMPLER, Collections, Topics
from framesift.track import Track, is_sidecar

log = get_logger(__name__)

# A video or segment whose dead letter is replayed: processing again (both statuses' value).
_RESTARTED = SegmentRecord.fields(
    **VideoRecord.fields(status=VideoStatus.PROCESSING.value, error=None, dead_lettered=False)
)
# The frame rate the sampler guesses to start decoding before the probe answers (the decode
# mode of every-N-seconds depends on it; most cameras record 24 to 60 fps).
LIKELY_FPS = 30.0


class Outcome(StrEnum):
    SAMPLED = "sampled"
    SEGMENTED = "segmented"  # long video: its segments were sent on as their own messages
    FAILED = "failed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    PLACED = "placed"  # a telemetry sidecar: the frames of the videos beside it placed on it


@dataclass(frozen=True)
class SampleResult:
    outcome: Outcome
    reason: str = ""
    video_doc_id: str | None = None
    frames: int = 0
    source: str = ""  # the uploaded object's name, for people to recognise it


@dataclass(frozen=True)
class SamplerConfig:
    """The settings the sampler reads (each named as in :class:`~framesift.config.Settings`)."""

    raw_bucket: str
    raw_prefix: str
    images_prefix: str
    frames_bucket: str
    policy: SamplingPolicy  # the deployment's default; an object's metadata may override it
    jpeg_quality: int
    reference_decode_min_frames: float
    max_video_pixels: int
    segment_seconds: float
    frames_per_message: int
    ffmpeg_binary: str
    ffprobe_binary: str
    sampler_cpus: int
    source_reconnect_delay_max_s: int


class Sampler:
    def __init__(
        self,
        blobs: BlobStore,
        documents: DocumentStore,
        publisher: Publisher,
        config: SamplerConfig,
    ) -> None:
        self._blobs = blobs
        self._documents = documents
        self._publisher = publisher
        self._config = config
        self._ffmpeg = media.Ffmpeg(
            config.ffmpeg_binary,
            config.ffprobe_binary,
            config.sampler_cpus,
            config.source_reconnect_delay_max_s,
        )
        self._frames = FrameOutput(
            blobs, documents, publisher, config.frames_bucket, config.frames_per_message
        )
        self._sidecars = SidecarPlacer(blobs, documents, config.raw_prefix)

    def handle_message(self, message: PubSubMessage) -> SampleResult:
        """Either kind of message the sampler function receives."""
        if message.attributes.get(SEGMENT_MESSAGE):
            task = SegmentTask.from_message(message)
            return replace(self.sample_segment(task), source=task.object_name)
        notification = GcsNotification.from_message(message)
        return replace(self.handle(notification), source=notification.object.name)

    def handle(self, notification: GcsNotification) -> SampleResult:
        if notification.event_type != OBJECT_FINALIZE:
            return self._ignore(notification.object, f"event {notification.event_type!r}")
        obj = notification.object
        if obj.bucket != self._config.raw_bucket:
            return self._ignore(obj, f"bucket {obj.bucket!r} is not the raw bucket")
        if is_photo(obj.name, self._config.images_prefix):
            return self._ignore(obj, "under the images prefix: dedup takes it")
        if is_sidecar(obj.name):
            placed = self._sidecars.apply(obj)
            reason = f"{placed.frames} frame(s) of {placed.videos} video(s) placed on it"
            log.info("telemetry sidecar: %s", reason, extra={"fields": {"object": obj.name}})
            return SampleResult(Outcome.PLACED, reason, frames=placed.frames)
        parsed = parse_upload_name(obj.name, self._config.raw_prefix, VIDEO_EXTENSIONS, "a video")
        if isinstance(parsed, str):
            record_ignored(self._documents, obj, parsed, SAMPLER.name)
            return SampleResult(Outcome.IGNORED, parsed)
        return self._start(obj, parsed)

    def _ignore(self, obj: GcsObject, reason: str) -> SampleResult:
        log.info(
            "object ignored: %s",
            reason,
            extra={"fields": {"bucket": obj.bucket, "object": obj.name}},
        )
        return SampleResult(Outcome.IGNORED, reason)

    def _start(self, obj: GcsObject, name: UploadName) -> SampleResult:
        documents = self._documents
        video = VideoRecord(
            id=VideoRecord.make_id(obj.bucket, obj.name, obj.generation),
            collector=name.collector,
            video_id=name.stem,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            size_bytes=obj.size,
            status=VideoStatus.PROCESSING,
        )
        bind_context(video_doc_id=video.id, collector=name.collector, video_id=name.stem)
        created, existing = create_or_get(documents, Collections.VIDEOS, video.id, video)
        if not created:
            if existing.get("dead_lettered"):
                log.info("a dead letter replayed: sampling the video again")
                documents.merge(Collections.VIDEOS, video.id, _RESTARTED)
            elif existing.get("status") in VIDEO_FINISHED:
                log.info("duplicate delivery: video already %s", existing["status"])
                return SampleResult(Outcome.DUPLICATE, str(existing["status"]), video.id)
            if existing.get("segments_sent"):
                # Its segments are on their topic, which delivers them at least once.
                log.info("duplicate delivery: segments already sent")
                return SampleResult(Outcome.DUPLICATE, "segments already sent", video.id)
            log.warning("video left processing by an earlier attempt; starting it again")

        if obj.size == 0:
            return self._fail_video(video.id, "empty object (0 bytes)")
        try:
            policy = self._config.policy.overridden_by(obj.metadata)
        except BadEvent as exc:
            return self._fail_video(video.id, str(exc))
        try:
            url = self._blobs.stream_url(obj.bucket, obj.name, generation=obj.generation)
        except ObjectGone as exc:
            return self._fail_video(video.id, _gone(exc))
        # Decoding starts while the probe runs, on the likely guesses (one segment, the decode
        # mode of a 30 fps video, the first video stream, SDR, progressive, starting at 0); the
        # decoder refuses frames over the pixel limit before the
        # probe's check can. Kept only if the probe agrees, else stopped.
        early = media.Sampling(
            url,
            policy,
            self._config.jpeg_quality,
            media.WHOLE,
            self._ffmpeg,
            policy.decode_mode(LIKELY_FPS, self._config.reference_decode_min_frames),
            max_pixels=self._config.max_video_pixels,
        )
        try:
            return self._planned(obj, name, video, policy, url, early)
        finally:
            early.cancel()  # nothing, once its frames were read

    def _planned(
        self,
        obj: GcsObject,
        name: UploadName,
        video: VideoRecord,
        policy: SamplingPolicy,
        url: str,
        early: media.Sampling,
    ) -> SampleResult:
        documents = self._documents
        try:
            probe = media.probe(url, self._ffmpeg)
        except UnreadableVideo as exc:
            return self._fail_video(video.id, str(exc))

        if reason := too_large(probe, self._config.max_video_pixels):
            return self._fail_video(video.id, reason)
        segments = media.plan_segments(probe, policy, self._config.segment_seconds)
        decode = policy.decode_mode(probe.fps, self._config.reference_decode_min_frames)
        capture = video_capture(probe.format_tags, probe.stream_tags)
        if capture.metadata_notes:
            log.warning(
                "capture metadata dropped", extra={"fields": {"notes": capture.metadata_notes}}
            )
        plan = media.plan_picture(probe, self._ffmpeg)
        if plan.tone_map_note:
            log.warning("%s", plan.tone_map_note)
        documents.merge(
            Collections.VIDEOS,
            video.id,
            probed_fields(probe, policy, decode, len(segments), capture, plan),
        )
        sidecar = find_sidecar(self._blobs, obj.bucket, obj.name)
        tasks = segment_tasks(
            obj, name, video.id, policy, probe, segments, decode, plan.picture, capture, sidecar
        )
        guessed = (early.decode, early.picture, early.origin_s)
        if len(tasks) == 1 and guessed == (decode, plan.picture, probe.start_time_s):
            return self.sample_segment(tasks[0], early)
        # Guessed wrong: not one segment, another decode mode, stream or filters, or a stream
        # that starts late (the windows count from its first frame).
        early.cancel()
        if len(tasks) == 1:
            return self.sample_segment(tasks[0])
        for task in tasks:
            self._publisher.publish(
                Topics.VIDEO_SEGMENTS,
                task.model_dump_json().encode(),
                {SEGMENT_MESSAGE: task.segment_id, "video_doc_id": video.id},
            )
        documents.merge(Collections.VIDEOS, video.id, VideoRecord.fields(segments_sent=True))
        log.info("long video sent on as %d segments", len(tasks))
        return SampleResult(Outcome.SEGMENTED, f"{len(tasks)} segments", video.id)

    def sample_segment(
        self, task: SegmentTask, started: media.Sampling | None = None
    ) -> SampleResult:
        """Sample one segment (``started``: its ffmpeg already running)."""
        documents = self._documents
        bind_context(video_doc_id=task.video_doc_id, segment=task.index)
        record = segment_record(task, SegmentStatus.PROCESSING)
        created, existing = create_or_get(documents, Collections.VIDEO_SEGMENTS, record.id, record)
        if not created:
            if existing.get("dead_lettered"):
                log.info("a dead letter replayed: sampling the segment again")
                documents.merge(Collections.VIDEO_SEGMENTS, record.id, _RESTARTED)
            elif existing.get("status") in (SegmentStatus.DONE, SegmentStatus.FAILED):
                log.info("duplicate delivery: segment already %s", existing["status"])
                return SampleResult(Outcome.DUPLICATE, str(existing["status"]), task.video_doc_id)

        frames: list[SampledFrame] = []
        error: str | None = None
        track = self._track(task)
        try:
            if started is None:
                started = media.Sampling(
                    self._blobs.stream_url(
                        task.bucket, task.object_name, generation=task.generation
                    ),
                    task.policy,
                    self._config.jpeg_quality,
                    task.segment,
                    self._ffmpeg,
                    task.decode,
                    picture=task.picture,
                    origin_s=task.start_time_s,
                )
            for image in started.images():
                frames.append(self._frames.store(task, image, track))
        except SamplingFailed as exc:
            error = str(exc)  # frames decoded before a mid-file corruption are kept
        except ObjectGone as exc:
            error = _gone(exc)
        if error is None and not frames and task.count == 1:
            error = "no frame could be decoded"

        self._frames.publish(task, frames, damaged=error is not None)
        status = SegmentStatus.FAILED if error else SegmentStatus.DONE
        documents.merge(
            Collections.VIDEO_SEGMENTS,
            record.id,
            SegmentRecord.fields(status=status.value, frames=len(frames), error=error),
        )
        if error:
            log.error("segment failed: %s", error, extra={"fields": {"frames": len(frames)}})
        else:
            log.info("segment sampled", extra={"fields": {"frames": len(frames)}})
        return self._finish_video_if_complete(task)

    def _track(self, task: SegmentTask) -> Track | None:
        """The video's telemetry: the sidecar beside it when it was planned (framesift.track),
        else its GoPro GPMF track (framesift.gpmf), if it has either."""
        if task.sidecar and (track := read_sidecar(self._blobs, task.bucket, task.sidecar)):
            return track
        if task.telemetry_stream is None:
            return None
        video = PurePosixPath(task.object_name).name
        try:
            url = self._blobs.stream_url(task.bucket, task.object_name, generation=task.generation)
            payloads = media.telemetry_payloads(
                url, task.telemetry_stream, self._ffmpeg, task.start_time_s
            )
        except (UnreadableVideo, ObjectGone) as exc:
            # The frames keep the container's place, and say why.
            log.warning("GPMF track unreadable: %s", exc)
            return Track(video, [], [f"{video} GPMF: unreadable: {exc}"])
        return parse_gpmf(video, payloads)

    def give_up(self, message: PubSubMessage, reason: str) -> None:
        """Mark the video or segment of a dead-lettered message ``failed`` with the reason, so
        none stays ``processing``; replaying the dead letter samples it again."""
        documents = self._documents
        try:
            if message.attributes.get(SEGMENT_MESSAGE):
                task = SegmentTask.from_message(message)
                segment = documents.get(Collections.VIDEO_SEGMENTS, task.segment_id)
                if segment is None or segment.get("status") == SegmentStatus.PROCESSING:
                    failed = segment_record(
                        task, SegmentStatus.FAILED, error=reason, dead_lettered=True
                    )
                    documents.merge(Collections.VIDEO_SEGMENTS, failed.id, failed.stored())
                    self._finish_video_if_complete(task)
                return
            obj = GcsNotification.from_message(message).object
        except BadEvent:
            return  # it names no video
        video_id = VideoRecord.make_id(obj.bucket, obj.name, obj.generation)
        video = documents.get(Collections.VIDEOS, video_id)
        if video is not None and video.get("status") == VideoStatus.PROCESSING:
            self._fail_video(video_id, reason, dead_lettered=True)

    def _finish_video_if_complete(self, task: SegmentTask) -> SampleResult:
        """Close the video once all its segments are finished (whichever finishes last does it)."""
        segments = self._documents.where(
            Collections.VIDEO_SEGMENTS, "video_doc_id", task.video_doc_id
        )
        finished = [s for s in segments if s["status"] != SegmentStatus.PROCESSING]
        frames = sum(int(s["frames"]) for s in finished)
        if len(finished) < task.count:
            return SampleResult(Outcome.SEGMENTED, "segment done", task.video_doc_id, frames)
        errors = sorted((s["index"], s["error"]) for s in finished if s.get("error"))
        error = None
        if errors:
            index, first_error = errors[0]
            error = first_error if task.count == 1 else f"segment {index}: {first_error}"
        status = VideoStatus.FAILED if errors else VideoStatus.SAMPLED
        self._documents.merge(
            Collections.VIDEOS,
            task.video_doc_id,
            VideoRecord.fields(status=status.value, frames_sampled=frames, error=error),
        )
        if status is VideoStatus.FAILED:
            log.error("video failed: %s", error, extra={"fields": {"frames": frames}})
            return SampleResult(Outcome.FAILED, error or "", task.video_doc_id, frames)
        log.info("video sampled", extra={"fields": {"frames": frames}})
        return SampleResult(Outcome.SAMPLED, "", task.video_doc_id, frames)

    def _fail_video(
        self, video_doc_id: str, error: str, dead_lettered: bool = False
    ) -> SampleResult:
        self._documents.merge(
            Collections.VIDEOS,
            video_doc_id,
            VideoRecord.fields(
                status=VideoStatus.FAILED.value, error=error, dead_lettered=dead_lettered
            ),
        )
        log.error("video failed: %s", error)
        return SampleResult(Outcome.FAILED, error, video_doc_id)


def _gone(exc: ObjectGone) -> str:
    # The words ffmpeg's 404 gives too (media), for one reason whichever way it is found.
    return f"{media.GONE}: {exc}"
