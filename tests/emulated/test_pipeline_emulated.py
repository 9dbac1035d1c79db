"""The whole pipeline on the emulated stack, through the deployed functions and Pub/Sub:
upload -> sampler -> dedup -> labeler (Scale's fake) -> Scale's callbacks -> webhook ->
Firestore -> exporter (a Cloud Scheduler message) -> BigQuery, with callbacks delivered twice."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, firestore, pubsub_v1, storage

from framesift.config import Vendor
from framesift.documents import VideoRecord
from framesift.topology import FUNCTIONS, Topics
from framesift_dev import apicalls
from framesift_dev.devstack import BIGQUERY_DATASET, FRAMES_BUCKET, RAW_BUCKET
from framesift_infra.permissions import needs
from tests.support.infra import PROJECT, deploy_under_mocks, grants, vendor_secret_values
from tests.support.media import lavfi_video
from tests.support.payloads import scale_completes
from tests.support.waiting import wait_for

# The permission check reads the API calls the first test made: one worker runs both, in order.
pytestmark = [pytest.mark.emulated, pytest.mark.xdist_group("pipeline")]


def test_upload_to_bigquery(devstack, scale, unique, tmp_path):
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    # Three shots of a size no other test uses: the same frames uploaded by another test of the
    # session would be exact duplicates (dedup's content hashes are dataset-wide) and dropped.
    video = tmp_path / "three_shots.mp4"
    shots = ["color=c=red:", "color=c=blue:", "testsrc2="]
    lavfi_video(video, [f"{shot}size=320x256:rate=25:duration=2" for shot in shots], "-g", "50")
    blob = gcs.bucket(RAW_BUCKET).blob(f"e2e-{unique}/three_shots.mp4")
    blob.upload_from_filename(str(video), content_type="video/mp4")
    video_doc_id = VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))

    def frames() -> list[dict]:
        query = db.collection("frames").where(
            filter=firestore.FieldFilter("video_doc_id", "==", video_doc_id)
        )
        return [doc.to_dict() for doc in query.stream()]

    def requested() -> list[dict] | None:
        kept = [f for f in frames() if f.get("dedup_status") == "kept"]
        done = kept and all(f.get("labeling_status") == "requested" for f in kept)
        return kept if done else None

    kept = wait_for(requested, "the kept frames' Scale tasks")
    webhook = f"{devstack.env['FRAMESIFT_WEBHOOK_URL']}/scale"
    auth = {"scale-callback-auth": devstack.env["FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"]}
    for _ in range(2):  # Scale may call back twice
        for frame in kept:
            [task] = scale.by_unique_id(frame["id"])
            response = requests.post(webhook, json=scale_completes(task), headers=auth, timeout=60)
            assert response.status_code == 200, response.text

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(devstack.project, Topics.EXPORT_REQUESTS)
    publisher.publish(topic, json.dumps({"full": False}).encode()).result()

    warehouse = bigquery.Client(
        project=devstack.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": devstack.env["FRAMESIFT_BIGQUERY_ENDPOINT"]},
    )
    dataset = f"`{devstack.project}.{BIGQUERY_DATASET}`"

    def exported() -> list[dict] | None:
        rows = [
            dict(row.items())
            for row in warehouse.query(
                f"SELECT f.id, f.dedup_status, f.labeling_status, b.label, b.x"
                f" FROM {dataset}.frames AS f"
                f" LEFT JOIN {dataset}.annotation_boxes AS b ON b.frame_id = f.id"
                f" WHERE f.video_doc_id = '{video_doc_id}'"
            ).result()
        ]
        # The exporter merges table after table: done when the last of them shows the boxes.
        boxed = [r for r in rows if r["labeling_status"] == "labeled" and r["label"]]
        return rows if len(boxed) == len(kept) else None

    rows = wait_for(exported, "the exporter to fill BigQuery")
    assert len(rows) == len(frames())  # every frame once, each kept one with its one box
    assert sorted(r["id"] for r in rows if r["label"] == "car") == sorted(f["id"] for f in kept)
    assert all(r["x"] == pytest.approx(0.1) for r in rows if r["label"])  # 32 of 320 pixels
    dropped = [r for r in rows if r["dedup_status"] == "dropped"]
    assert dropped and all(r["label"] is None for r in dropped)


def test_every_google_api_call_of_the_run_is_granted_by_the_infra(devstack_manager, deployed):
    """Every Google API call each function made so far in this session (the whole pipeline
    above, photos, labeling, export), recorded at its client, mapped to the IAM permission it
    needs (framesift_infra.permissions, each rule with its source), must be granted by a role
    the Pulumi program binds to that function's account, on that bucket, topic or dataset.
    The emulators enforce no IAM; this is where a missing role shows."""
    # The session ran the labeler with every vendor; each vendor's deployment grants it what
    # that vendor needs (the manifest vendor's labeler alone writes, under manifests/).
    recorders = [deployed[0]] + [
        deploy_under_mocks(
            vendor=vendor.value,
            secrets=vendor_secret_values(vendor.value),
        )[0]
        for vendor in (Vendor.MANIFEST, Vendor.SCALE)
    ]
    # The emulated stack's names, as the program names the same things.
    deployed_names = {
        RAW_BUCKET: f"framesift-{PROJECT}-raw",
        FRAMES_BUCKET: f"framesift-{PROJECT}-frames",
    }
    missing: dict[str, set[str]] = {}
    seen_functions = set()
    for spec in FUNCTIONS:
        calls = [
            call
            for path in devstack_manager.state_dir.glob(f"apicalls-{spec.name}*.jsonl")
            for call in apicalls.read(path)
        ]
        if calls:
            seen_functions.add(spec.name)
        account = f"serviceAccount:framesift-{spec.name}@{PROJECT}.iam.gserviceaccount.com"
        granted = [grant for recorder in recorders for grant in grants(recorder, account)]
        for call in calls:
            for need in needs(call, dataset=BIGQUERY_DATASET):
                need = replace(need, resource=deployed_names.get(need.resource, need.resource))
                if not any(grant.allows(need) for grant in granted):
                    where = f"{need.scope.value} {need.resource or PROJECT}".strip()
                    missing.setdefault(spec.name, set()).add(f"{need.permission} on {where}")
    assert seen_functions == {spec.name for spec in FUNCTIONS}, "every function was exercised"
    assert missing == {}
