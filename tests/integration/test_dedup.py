"""Dedup: exact and near duplicates in both scopes, recorded reasons, redelivery, concurrency.

The stage runs on the embedded stack here and, marked emulated, against the Firestore emulator
for the concurrency guarantee and end to end through the functions.
"""

from __future__ import annotations

import random
import threading

import pytest

from framesift import bootstrap
from framesift.bootstrap import Adapters, build_adapters
from framesift.config import Backend, DedupScope, Settings
from framesift.embedded import EmbeddedPipeline
from framesift.imagestats import hamming, layout_distance
from framesift.messages import FrameBatch, KeptFrames
from framesift.stages.dedup import BatchOutcome
from framesift.topology import Topics
from tests.support.dedupframes import one_frame_batch


def _frames(pipeline: EmbeddedPipeline, video_doc_id: str) -> list[dict]:
    docs = pipeline.adapters.documents.where("frames", "video_doc_id", video_doc_id)
    return sorted(docs, key=lambda d: d["timestamp_ms"])


def _kept_messages(pipeline: EmbeddedPipeline) -> list[KeptFrames]:
    return [
        KeptFrames.model_validate_json(m.data)
        for m in pipeline.publisher.published[Topics.FRAMES_KEPT]
    ]


def _run(pipeline: EmbeddedPipeline, video, collector: str = "cam") -> str:
    pipeline.upload(video, collector)
    pipeline.publisher.drain()
    video_doc_id = pipeline.summary.results[-1].video_doc_id
    assert video_doc_id is not None
    return video_doc_id


def test_static_scene_keeps_one_frame_and_records_why_the_rest_dropped(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    video = _run(pipeline, media["parked"])

    frames = _frames(pipeline, video)
    assert len(frames) == 6
    first, rest = frames[0], frames[1:]
    assert first["dedup_status"] == "kept"
    for frame in rest:
        assert frame["dedup_status"] == "dropped"
        assert frame["dedup_drop_reason"] == "near_duplicate"
        assert frame["dedup_scope"] == "video"
        assert frame["dedup_duplicate_of"] == first["id"]
        assert 0 <= frame["dedup_distance"] <= embedded_settings.dedup_threshold
    [message] = _kept_messages(pipeline)
    assert [f.frame_id for f in message.frames] == [first["id"]]


def test_every_distinct_scene_is_kept_and_its_repeats_dropped(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    video = _run(pipeline, media["three_scenes"])  # three still pictures, 2 s each

    # By window (each frame is its 1 s window's first reference frame).
    decisions = {f["timestamp_ms"] // 1000 * 1000: f for f in _frames(pipeline, video)}
    assert sorted(decisions) == [0, 1000, 2000, 3000, 4000, 5000]
    assert {ms for ms, f in decisions.items() if f["dedup_status"] == "kept"} == {0, 2000, 4000}
    # The second second of a still picture is that picture again (re-encoded, so not the same
    # bytes): a near duplicate of the first, within the video.
    for ms, of in ((1000, 0), (3000, 2000), (5000, 4000)):
        assert decisions[ms]["dedup_drop_reason"] == "near_duplicate"
        assert decisions[ms]["dedup_scope"] == "video"
        assert decisions[ms]["dedup_duplicate_of"] == decisions[of]["id"]


def test_a_flat_noisy_hold_keeps_one_frame_and_a_change_of_colour_is_kept(media, embedded_settings):
    """Colour bars under sensor noise for 10 s, then a red and a teal wall of one luma: pHash
    alone kept frames of the bars over and over (noise decided their bits) and dropped the teal
    wall as the red one (luma only); the dead zone and the colour layout keep one of each."""
    pipeline = EmbeddedPipeline(embedded_settings)
    video = _run(pipeline, media["flat_and_colour"])

    frames = sorted(_frames(pipeline, video), key=lambda f: f["timestamp_ms"])
    kept = [f["timestamp_ms"] // 1000 for f in frames if f["dedup_status"] == "kept"]
    assert len(frames) == 16
    assert kept == [0, 10, 13]
    teal = next(f for f in frames if f["timestamp_ms"] // 1000 == 13)
    red = next(f for f in frames if f["timestamp_ms"] // 1000 == 10)
    assert hamming(teal["phash"], red["phash"]) <= embedded_settings.dedup_threshold
    assert layout_distance(teal["layout"], red["layout"]) > embedded_settings.dedup_layout_threshold


@pytest.mark.parametrize("scope", list(DedupScope))
def test_the_same_drive_under_three_collectors_is_labeled_once(
    media, embedded_settings, tmp_path, scope
):
    """Each frame of the copies is the exact duplicate of the kept frame standing for its bytes,
    whatever the scope: before, a frame dropped as a near duplicate in the first video was kept
    again under each other collector (the collector scope did not hold its original). Every
    batch is delivered twice."""
    pipeline = EmbeddedPipeline(embedded_settings.model_copy(update={"dedup_scope": scope}))
    videos = []
    for collector in ("cam-a", "cam-b", "cam-c"):
        copy = tmp_path / f"{collector}.mp4"
        copy.write_bytes(media["parked"].read_bytes())
        videos.append(_run(pipeline, copy, collector))
    for message in list(pipeline.publisher.published[Topics.FRAMES_SAMPLED]):
        pipeline.publisher.publish(Topics.FRAMES_SAMPLED, message.data, message.attributes)
    pipeline.publisher.drain()

    first, *copies = (_frames(pipeline, video) for video in videos)
    [kept] = [f["id"] for f in first if f["dedup_status"] == "kept"]
    for frames in copies:
        assert len(frames) == 6
        assert {(f["dedup_drop_reason"], f["dedup_duplicate_of"]) for f in frames} == {
            ("exact_duplicate", kept)
        }
    assert [f.frame_id for m in _kept_messages(pipeline) for f in m.frames] == [kept]


def test_redelivered_batch_changes_nothing_and_sends_nothing(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    video = _run(pipeline, media["parked"])
    before = _frames(pipeline, video)
    [batch_message] = pipeline.publisher.published[Topics.FRAMES_SAMPLED]

    for _ in range(2):
        pipeline.publisher.publish(
            Topics.FRAMES_SAMPLED, batch_message.data, batch_message.attributes
        )
    pipeline.publisher.drain()

    assert [b.outcome for b in pipeline.summary.batches] == [
        BatchOutcome.DONE,
        BatchOutcome.DUPLICATE,
        BatchOutcome.DUPLICATE,
    ]
    assert _frames(pipeline, video) == before
    assert len(_kept_messages(pipeline)) == 1


def test_frames_decided_before_a_crash_keep_their_decision(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.publisher.unsubscribe_all(Topics.FRAMES_SAMPLED)  # the dedup instance "crashes"
    video = _run(pipeline, media["parked"])
    batch = FrameBatch.model_validate_json(
        pipeline.publisher.retained[Topics.FRAMES_SAMPLED][0].data
    )
    dedup = bootstrap.dedup(pipeline.adapters, embedded_settings)
    # It had decided the last frame first (as if the batch came in another order), then died.
    assert dedup.decide(batch.frames[-1], batch).status == "kept"

    result = dedup.handle_batch(batch)

    frames = _frames(pipeline, video)
    assert frames[-1]["dedup_status"] == "kept"  # not re-decided against the others
    assert sum(f["dedup_status"] == "kept" for f in frames) == result.kept == 1


def _twin_frames(index: int, prefix: str = "") -> tuple[FrameBatch, FrameBatch]:
    """Two frames of two videos, 3 bits apart: near-identical; far from other rounds' twins."""
    base = random.Random(index).getrandbits(64)
    return (
        one_frame_batch(f"{prefix}va{index}", "cam", f"{base:016x}"),
        one_frame_batch(f"{prefix}vb{index}", "cam", f"{base ^ 0b111:016x}"),
    )


def _decide_together(adapters: Adapters, settings, batches) -> int:
    """Decide each batch's frame from its own thread at the same moment; how many were kept."""
    start = threading.Barrier(len(batches))
    decisions = []

    def decide(batch: FrameBatch) -> None:
        dedup = bootstrap.dedup(adapters, settings)
        start.wait()
        decisions.append(dedup.decide(batch.frames[0], batch))

    threads = [threading.Thread(target=decide, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(decisions) == len(batches)
    return sum(d.status == "kept" for d in decisions)


def _decide_at_once(adapters: Adapters, settings, rounds: int, prefix: str = "") -> list[int]:
    return [_decide_together(adapters, settings, _twin_frames(i, prefix)) for i in range(rounds)]


def test_two_instances_at_once_never_both_keep_near_twins_sqlite(embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    assert _decide_at_once(pipeline.adapters, embedded_settings, rounds=20) == [1] * 20


@pytest.mark.emulated
def test_two_instances_at_once_never_both_keep_near_twins_firestore(devstack, unique):
    settings = Settings(
        backend=Backend.GCP,
        project=devstack.project,
        bigquery_endpoint=devstack.env["FRAMESIFT_BIGQUERY_ENDPOINT"],
    )
    adapters = build_adapters(settings)
    assert _decide_at_once(adapters, settings, rounds=10, prefix=unique) == [1] * 10


def test_a_clean_video_keeps_its_frames_after_a_corrupt_copy_of_it(
    media, embedded_settings, tmp_path
):
    """The good frames of a damaged copy never become the originals the clean video's frames are
    dropped against: the copy's frames are decided, but do not enter the dataset's indexes."""
    pipeline = EmbeddedPipeline(embedded_settings)
    damaged = _run(pipeline, media["corrupt_middle"], "cam")
    clean = _run(pipeline, media["clip_5s_25fps"], "cam")

    clean_frames = _frames(pipeline, clean)
    damaged_ids = {f["id"] for f in _frames(pipeline, damaged)}
    assert clean_frames and all(f["dedup_duplicate_of"] not in damaged_ids for f in clean_frames)
    assert [f["dedup_status"] for f in clean_frames].count("kept") >= 1
