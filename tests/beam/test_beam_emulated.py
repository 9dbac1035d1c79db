"""The Beam pipeline against the emulated stack while its functions run on the same uploads:
both decide through the same index in the same Firestore, so the dataset-wide guarantee holds
whichever decides a frame first."""

from __future__ import annotations

import itertools
import shutil

import pytest

pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift.beam.pipeline import Labeling, list_prefix, run
from framesift.config import Settings
from framesift.documents import VideoRecord
from framesift.imagestats import hamming, layout_distance
from framesift_dev.devstack import RAW_BUCKET, environ
from tests.support.media import lavfi_video
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.emulated, pytest.mark.xdist_group("beam")]


@pytest.mark.parametrize("labeling", list(Labeling))
def test_beam_beside_the_functions_on_the_same_videos_keeps_the_dataset_guarantee(
    devstack, scale, unique, tmp_path, labeling
):
    """Labeled by the pipeline's own step, or by the deployed labeler the kept frames are sent
    to."""
    size = "size=320x240:rate=25"
    shots = tmp_path / "shots.mp4"
    # A still scene, then a moving one: near duplicates within the video, 6 s (2 segments on
    # the stack, whose segments are 4.5 s).
    # Its own hue: other bytes than every other upload of the session (dedup's content hashes
    # are dataset-wide).
    hue = f"hue=h={int(unique, 16) % 360}"
    lavfi_video(
        shots,
        [
            f"smptebars={size}:duration=3,noise=alls=12:allf=t+u,{hue}",
            f"mandelbrot={size},trim=end_frame=75,{hue}",
        ],
    )
    # The same bytes under a second name: exact duplicates across videos.
    shutil.copy(shots, tmp_path / "shots_again.mp4")
    collector = f"beam-{unique}"
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    video_ids = []
    for name in ("shots.mp4", "shots_again.mp4"):
        blob = gcs.bucket(RAW_BUCKET).blob(f"{collector}/{name}")
        blob.upload_from_filename(str(tmp_path / name), content_type="video/mp4")
        video_ids.append(VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation)))

    # The functions got the uploads' notifications; Beam takes the same objects now.
    with environ(devstack.env):
        settings = Settings()
        listing = list_prefix(settings, f"{collector}/")
        run(settings, listing, PipelineOptions(["--runner=DirectRunner"]), labeling)
    assert len(listing.notifications) == 2

    db = firestore.Client(project=devstack.project)

    def frames() -> list[dict]:
        found = []
        for video_doc_id in video_ids:
            query = db.collection("frames").where(
                filter=firestore.FieldFilter("video_doc_id", "==", video_doc_id)
            )
            found += [doc.to_dict() for doc in query.stream()]
        return found

    def settled() -> list[dict] | None:
        videos = [db.collection("videos").document(v).get().to_dict() or {} for v in video_ids]
        if any(video.get("status") != "sampled" for video in videos):
            return None
        found = frames()
        if len(found) != sum(video["frames_sampled"] for video in videos):
            return None
        kept = [f for f in found if f.get("dedup_status") == "kept"]
        if any(f.get("labeling_status") != "requested" for f in kept):
            return None
        return found if all(f.get("dedup_status") for f in found) else None

    decided = wait_for(settled, "both paths to decide and request every frame")
    kept = [f for f in decided if f["dedup_status"] == "kept"]
    dropped = [f for f in decided if f["dedup_status"] == "dropped"]
    assert kept and dropped
    # Each picture is kept once, in one of the two videos: never its copy too.
    assert len({f["sha256"] for f in kept}) == len(kept)
    # No kept frame is a near duplicate of another kept frame of the collector.
    for a, b in itertools.combinations(kept, 2):
        near = hamming(a["phash"], b["phash"]) <= settings.dedup_threshold
        distance = layout_distance(a["layout"], b["layout"])
        alike = distance is None or distance <= settings.dedup_layout_threshold
        assert not (near and alike), (a["id"], b["id"])
    # One labeling task per kept frame, none for a dropped one, whichever path sent it.
    assert all(len(scale.by_unique_id(f["id"])) == 1 for f in kept)
    assert all(scale.by_unique_id(f["id"]) == [] for f in dropped)
