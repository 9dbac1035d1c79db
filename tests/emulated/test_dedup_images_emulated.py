"""Photos uploaded to the raw bucket, decided by the dedup function."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift_dev.devstack import RAW_BUCKET
from tests.support.waiting import wait_for


@pytest.mark.emulated
def test_photos_uploaded_to_the_bucket_are_decided_by_the_dedup_function(devstack, photos, unique):
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    names = {"photo": "photo.jpg", "copy": "photo-copy.jpg", "truncated": "cut.jpg"}
    for key, name in names.items():
        gcs.bucket(RAW_BUCKET).blob(f"images/shop-{unique}/{name}").upload_from_filename(
            str(photos[key])
        )

    def decided() -> dict[str, dict] | None:
        query = db.collection("frames").where(
            filter=firestore.FieldFilter("collector", "==", f"shop-{unique}")
        )
        docs = {d.to_dict()["object_name"].rsplit("/", 1)[1]: d.to_dict() for d in query.stream()}
        return (
            docs if len(docs) == 3 and all(d.get("dedup_status") for d in docs.values()) else None
        )

    docs = wait_for(decided, "dedup to decide the three photos")

    assert docs["cut.jpg"]["dedup_drop_reason"] == "unreadable"
    # The copy and the original race; exactly one of them is kept.
    statuses = sorted(docs[n]["dedup_status"] for n in ("photo.jpg", "photo-copy.jpg"))
    assert statuses == ["dropped", "kept"]
    dropped = next(
        docs[n] for n in ("photo.jpg", "photo-copy.jpg") if docs[n]["dedup_status"] == "dropped"
    )
    assert dropped["dedup_drop_reason"] == "exact_duplicate"
