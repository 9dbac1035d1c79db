"""Dedup over in-memory fakes of its ports: exact and near duplicates within a batch, across
batches and videos in each scope, photos read from the blob store, and exactly-once effects when
a batch is delivered twice. The frames are real JPEGs made in memory, hashed as the sampler
hashes its frames' small copies; what is checked is what the stage stores and publishes."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from PIL import Image

from framesift.config import DedupScope, Settings, section
from framesift.errors import InvalidName
from framesift.events import PubSubMessage, finalize_message
from framesift.imagestats import image_stats
from framesift.messages import FrameBatch, KeptFrames, SampledFrame
from framesift.stages.dedup import BatchOutcome, Dedup, DedupConfig
from framesift.topology import Collections, Topics
from tests.support.fakes import InMemoryBlobStore, InMemoryDocumentStore, RecordingPublisher

SETTINGS = Settings()


def _scene(seed: int) -> Image.Image:
    """A picture of coloured blobs: scenes of two seeds are far apart in pHash and layout."""
    rng = random.Random(seed)
    grid = Image.new("RGB", (8, 6))
    grid.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(8 * 6)])
    return grid.resize((320, 240), Image.Resampling.BICUBIC)


def _jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _near(seed: int) -> bytes:
    """The scene again, smaller and more compressed: a near duplicate, not the same bytes."""
    return _jpeg(_scene(seed).resize((240, 180)), quality=60)


class Stack:
    """Dedup over fakes, with the sampler's part played by :meth:`sample`."""

    def __init__(self, scope: DedupScope = DedupScope.COLLECTOR) -> None:
        self.blobs = InMemoryBlobStore()
        self.documents = InMemoryDocumentStore()
        self.publisher = RecordingPublisher()
        settings = SETTINGS.model_copy(update={"dedup_scope": scope})
        self.dedup = Dedup(
            self.blobs, self.documents, self.publisher, section(DedupConfig, settings)
        )

    def sample(
        self, video: str, jpegs: list[bytes], collector: str = "cam", batch_index: int = 0
    ) -> PubSubMessage:
        """The sampler's frame batch for ``jpegs`` of ``video``, its JPEGs stored, as delivered."""
        frames = []
        for index, jpeg in enumerate(jpegs):
            name = f"{collector}/{video}/{batch_index:04d}{index:06d}.jpg"
            self.blobs.put(SETTINGS.frames_bucket, name, jpeg, "image/jpeg")
            info = image_stats(jpeg)
            frames.append(
                SampledFrame(
                    frame_id=f"{video}_{batch_index:04d}{index:06d}",
                    timestamp_ms=(batch_index * 100 + index) * 1000,
                    bucket=SETTINGS.frames_bucket,
                    object_name=name,
                    sha256=hashlib.sha256(jpeg).hexdigest(),
                    width=info.width,
                    height=info.height,
                    **{key: getattr(info.stats, key) for key in _STATS},
                )
            )
        batch = FrameBatch(
            video_doc_id=video,
            collector=collector,
            video_id=video,
            segment_index=0,
            batch_index=batch_index,
            batch_count=batch_index + 1,
            frames=frames,
        )
        return PubSubMessage.of(batch.model_dump_json().encode(), {}, f"m-{batch.batch_id}")

    def decision(self, frame_id: str) -> tuple[str, str | None, str | None, str | None]:
        """The frame's status, drop reason, the frame it duplicates and in which scope."""
        doc = self.documents.get(Collections.FRAMES, frame_id)
        assert doc is not None, frame_id
        return (
            doc["dedup_status"],
            doc["dedup_drop_reason"],
            doc["dedup_duplicate_of"],
            doc["dedup_scope"],
        )

    def kept(self) -> list[list[str]]:
        """The frame ids of each kept-frames message sent to the labeler."""
        return [
            [frame.frame_id for frame in KeptFrames.model_validate_json(message.data).frames]
            for message in self.publisher.published[Topics.FRAMES_KEPT]
        ]


_STATS = ("phash", "layout", "sharpness", "brightness")
KEPT = ("kept", None, None, None)


def test_exact_and_near_duplicates_in_a_batch_are_dropped_and_distinct_scenes_kept():
    stack = Stack()
    first = _jpeg(_scene(1))
    message = stack.sample("v1", [first, _near(1), _jpeg(_scene(2)), first])

    result = stack.dedup.handle_message(message)

    assert stack.decision("v1_0000000000") == KEPT
    assert stack.decision("v1_0000000001") == (
        "dropped",
        "near_duplicate",
        "v1_0000000000",
        "video",
    )
    assert stack.decision("v1_0000000002") == KEPT
    assert stack.decision("v1_0000000003")[:3] == ("dropped", "exact_duplicate", "v1_0000000000")
    assert (result.outcome, result.kept, result.dropped) == (BatchOutcome.DONE, 2, 2)
    assert stack.kept() == [["v1_0000000000", "v1_0000000002"]]


@pytest.mark.parametrize(
    ("scope", "collector", "dropped"),
    [
        (DedupScope.COLLECTOR, "cam", True),  # the same collector drove it again
        (DedupScope.ALL, "other-cam", True),  # dataset-wide: anyone's drive counts
        (DedupScope.COLLECTOR, "other-cam", False),  # another collector's own dataset
    ],
)
def test_a_scene_seen_in_an_earlier_batch_is_dropped_in_its_scope(scope, collector, dropped):
    stack = Stack(scope)
    stack.dedup.handle_message(stack.sample("v1", [_jpeg(_scene(1)), _jpeg(_scene(2))]))
    stack.dedup.handle_message(stack.sample("v1", [_jpeg(_scene(3))], batch_index=1))

    stack.dedup.handle_message(stack.sample("v2", [_near(3), _near(1)], collector))

    if dropped:
        assert stack.decision("v2_0000000000") == (
            "dropped",
            "near_duplicate",
            "v1_0001000000",
            "dataset",
        )
        assert stack.decision("v2_0000000001")[2:] == ("v1_0000000000", "dataset")
        assert stack.kept()[2:] == []
    else:
        assert stack.decision("v2_0000000000") == stack.decision("v2_0000000001") == KEPT
        assert stack.kept()[2:] == [["v2_0000000000", "v2_0000000001"]]


@pytest.mark.parametrize("scope", list(DedupScope))
def test_bytes_already_in_the_dataset_are_never_sent_again_whatever_the_collector(scope):
    """The same drive under three collectors, each batch delivered twice: its near duplicate,
    dropped in the first collector's video, is not kept under the others (where, in the
    collector scope, its near original is not in the index) but dropped as the exact
    duplicate of the kept frame that stands for its bytes."""
    stack = Stack(scope)
    drive = [_jpeg(_scene(1)), _near(1), _jpeg(_scene(2))]

    for collector in ("cam-a", "cam-b", "cam-c"):
        message = stack.sample(f"v-{collector}", drive, collector)
        for _ in range(2):
            stack.dedup.handle_message(message)

    assert stack.kept() == [["v-cam-a_0000000000", "v-cam-a_0000000002"]]
    for collector in ("cam-b", "cam-c"):
        assert [stack.decision(f"v-{collector}_000000000{i}")[:3] for i in range(3)] == [
            ("dropped", "exact_duplicate", "v-cam-a_0000000000"),
            ("dropped", "exact_duplicate", "v-cam-a_0000000000"),
            ("dropped", "exact_duplicate", "v-cam-a_0000000002"),
        ]


@pytest.mark.parametrize("collector", ["/", "", "a/b"])
def test_a_batch_whose_collector_cannot_name_an_index_scope_is_a_permanent_failure(collector):
    stack = Stack()
    message = stack.sample("v1", [_jpeg(_scene(1))], collector=collector or "cam")
    if not collector:  # the sampler's helper files it under a folder; the message names none
        batch = FrameBatch.from_message(message).model_copy(update={"collector": ""})
        message = PubSubMessage.of(batch.model_dump_json().encode(), {}, "m-empty")

    with pytest.raises(InvalidName, match="collector"):
        stack.dedup.handle_message(message)
    assert stack.documents.get(Collections.FRAMES, "v1_0000000000") is None


def test_a_batch_delivered_twice_is_decided_and_sent_once():
    stack = Stack()
    message = stack.sample("v1", [_jpeg(_scene(1)), _near(1), _jpeg(_scene(2))])
    first = stack.dedup.handle_message(message)
    stored = stack.documents.get_many(Collections.FRAMES, ["v1_0000000000", "v1_0000000001"])

    again = stack.dedup.handle_message(message)

    assert (first.outcome, again.outcome) == (BatchOutcome.DONE, BatchOutcome.DUPLICATE)
    assert stack.kept() == [["v1_0000000000", "v1_0000000002"]]
    assert stack.documents.get_many(Collections.FRAMES, list(stored)) == stored


def test_after_a_crash_before_the_batch_was_recorded_sent_it_is_sent_with_the_same_decisions():
    """A crash between deciding and recording the batch sent: the redelivery decides nothing
    again and sends the same kept frames (the labeler's per-frame idempotency absorbs it)."""
    stack = Stack()
    message = stack.sample("v1", [_jpeg(_scene(1)), _near(1), _jpeg(_scene(2))])
    stack.dedup.handle_message(message)
    decided = [stack.decision(f"v1_000000000{i}") for i in range(3)]
    [batch] = stack.documents.where(Collections.DEDUP_BATCHES, "video_doc_id", "v1")
    stack.documents.merge(Collections.DEDUP_BATCHES, batch["id"], {"status": "processing"})

    result = stack.dedup.handle_message(message)

    assert (result.outcome, result.kept) == (BatchOutcome.DONE, 2)
    assert [stack.decision(f"v1_000000000{i}") for i in range(3)] == decided
    assert stack.kept() == [["v1_0000000000", "v1_0000000002"]] * 2


def _upload(stack: Stack, name: str, data: bytes) -> PubSubMessage:
    """A photo put in the raw bucket's images prefix, and the notification that follows."""
    info = stack.blobs.put(
        SETTINGS.raw_bucket, f"{SETTINGS.images_prefix}shop/{name}", data, "image/jpeg"
    )
    return PubSubMessage.of(*finalize_message(info), message_id=f"m-{name}")


def test_photos_are_read_from_the_blob_store_and_decided_like_frames():
    stack = Stack()
    photo = stack.dedup.handle_message(_upload(stack, "photo.jpg", _jpeg(_scene(1))))
    near = stack.dedup.handle_message(_upload(stack, "photo-small.jpg", _near(1)))
    cut = stack.dedup.handle_message(_upload(stack, "cut.jpg", _jpeg(_scene(2))[:600]))

    assert (photo.kept, near.dropped_by_reason, cut.dropped_by_reason) == (
        1,
        {"near_duplicate": 1},
        {"unreadable": 1},
    )
    [kept] = stack.kept()
    [original] = kept
    frames = {doc["object_name"]: doc for doc in stack.documents.where("frames", "source", "image")}
    assert frames["images/shop/photo.jpg"]["id"] == original
    assert frames["images/shop/photo-small.jpg"]["dedup_duplicate_of"] == original
    assert frames["images/shop/cut.jpg"]["dedup_status"] == "dropped"


def _tinted(seed: int, quality: int = 90) -> bytes:
    """The scene under a warmer light: the same pHash within 2 bits, its colour layout 9.5
    levels away (within a video's bound, 12; past the dataset-wide second check's, 6)."""
    red, green, blue = _scene(seed).split()
    warmer = Image.merge(
        "RGB", (red.point(lambda v: min(255, v + 25)), green, blue.point(lambda v: max(0, v - 25)))
    )
    return _jpeg(warmer, quality)


def test_another_videos_frame_must_also_agree_in_colour_to_be_dropped():
    """Within a video the light drifts and a tinted repeat is a near duplicate; across videos a
    false match drops a scene nobody labels, so a candidate must pass the second check
    (framesift.samescene: colour layouts within 6 levels) as well as the pHash bound."""
    stack = Stack(DedupScope.ALL)
    stack.dedup.handle_message(stack.sample("v1", [_jpeg(_scene(1)), _tinted(1)]))
    assert stack.decision("v1_0000000001") == (
        "dropped",
        "near_duplicate",
        "v1_0000000000",
        "video",
    )

    stack.dedup.handle_message(stack.sample("v2", [_tinted(1, quality=85), _near(1)]))

    assert stack.decision("v2_0000000000") == KEPT
    assert stack.decision("v2_0000000001")[:2] == ("dropped", "near_duplicate")
