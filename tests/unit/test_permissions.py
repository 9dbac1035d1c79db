"""The permission tables the coverage check relies on (framesift_infra.permissions)."""

from __future__ import annotations

import json

import pytest

from framesift_dev.apicalls import uploaded_object
from framesift_infra.permissions import RULES, Grant, Need, Scope, Unmapped, needs
from framesift_infra.roles import describe, role_permissions


def test_creating_a_dataset_needs_a_project_permission_a_dataset_role_lacks():
    call = {"api": "http", "method": "POST", "path": "/bigquery/v2/projects/p/datasets"}
    [need] = needs(call, dataset="framesift")
    assert need == Need("bigquery.datasets.create", Scope.PROJECT)
    assert not Grant("roles/bigquery.dataEditor", Scope.DATASET, "framesift").allows(need)


def test_a_job_needs_the_projects_jobs_and_the_datasets_tables():
    call = {"api": "http", "method": "POST", "path": "/upload/bigquery/v2/projects/p/jobs"}
    found = needs(call, dataset="framesift")
    assert Need("bigquery.jobs.create", Scope.PROJECT) in found
    assert Need("bigquery.tables.updateData", Scope.DATASET, "framesift") in found
    grants = [
        Grant("roles/bigquery.jobUser", Scope.PROJECT),
        Grant("roles/bigquery.dataEditor", Scope.DATASET, "framesift"),
    ]
    assert all(any(grant.allows(need) for grant in grants) for need in found)


def test_a_signed_url_reads_with_the_signers_rights_within_a_conditional_grant():
    photo = needs({"api": "sign", "bucket": "raw", "object": "images/cam/a.jpg"}, "framesift")
    video = needs({"api": "sign", "bucket": "raw", "object": "cam/drive.mp4"}, "framesift")
    photos_only = Grant("roles/storage.objectViewer", Scope.BUCKET, "raw", "images/")
    signer = Grant("roles/iam.serviceAccountTokenCreator", Scope.SELF)
    assert all(photos_only.allows(n) or signer.allows(n) for n in photo)
    assert not photos_only.allows(next(n for n in video if n.scope is Scope.BUCKET))
    assert Need("iam.serviceAccounts.signBlob", Scope.SELF) in video


def test_object_paths_are_decoded_and_an_upload_may_overwrite():
    call = {"api": "http", "method": "POST", "path": "/upload/storage/v1/b/frames/o"}
    assert {n.permission for n in needs(call, "framesift")} == {
        "storage.objects.create",
        "storage.objects.delete",
    }
    get = {"api": "http", "method": "GET", "path": "/storage/v1/b/raw/o/images%2Fa.jpg"}
    assert needs(get, "framesift") == [
        Need("storage.objects.get", Scope.BUCKET, "raw", "images/a.jpg")
    ]


def test_a_google_call_without_a_rule_fails_and_a_vendor_call_needs_nothing():
    with pytest.raises(Unmapped):
        needs({"api": "http", "method": "POST", "path": "/storage/v1/b/raw/iam"}, "framesift")
    with pytest.raises(Unmapped):
        needs({"api": "grpc", "method": "/google.pubsub.v1.Subscriber/Pull"}, "framesift")
    assert needs({"api": "http", "method": "POST", "path": "/v1/task/imageannotation"}, "x") == []


def test_every_rule_names_its_source():
    assert all(rule.source.startswith("https://") for rule in RULES)


def test_a_role_definition_is_taken_only_for_the_role_it_names(tmp_path):
    (tmp_path / "run.invoker.json").write_text(
        json.dumps({"name": "roles/run.admin", "includedPermissions": ["run.services.delete"]})
    )
    with pytest.raises(SystemExit, match=r"not the definition of roles/run\.invoker"):
        describe("roles/run.invoker", tmp_path)
    (tmp_path / "run.invoker.json").write_text(
        json.dumps({"name": "roles/run.invoker", "includedPermissions": ["b", "a"]})
    )
    assert json.loads(describe("roles/run.invoker", tmp_path))["includedPermissions"] == ["a", "b"]


def test_every_vendored_role_holds_what_the_checks_rely_on():
    assert "storage.objects.delete" in role_permissions()["roles/storage.objectUser"]
    assert "storage.objects.delete" not in role_permissions()["roles/storage.objectViewer"]
    assert (
        "iam.serviceAccounts.signBlob" in role_permissions()["roles/iam.serviceAccountTokenCreator"]
    )


def test_an_upload_is_checked_against_the_object_its_body_names():
    """The storage client names an uploaded object in the multipart body's metadata (or the
    query, for a media upload): a grant on a prefix covers it only if the name is under it."""
    body = (
        b"--==0==\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"
        b'{"name": "manifests/b1.jsonl", "contentType": "application/jsonl"}\r\n--==0==\r\n'
        b"content-type: application/jsonl\r\n\r\n{}\r\n--==0==--"
    )
    path = "/upload/storage/v1/b/frames/o"
    call = {"api": "http", "method": "POST", "path": path, "query": "uploadType=multipart"}
    call["object"] = uploaded_object(call["query"], body)
    assert call["object"] == "manifests/b1.jsonl"
    assert uploaded_object("uploadType=media&name=v%2Fa.jpg", None) == "v/a.jpg"
    manifests = Grant("roles/storage.objectUser", Scope.BUCKET, "frames", "manifests/")
    assert all(manifests.allows(need) for need in needs(call, "framesift"))
    elsewhere = {**call, "object": uploaded_object("uploadType=media&name=v%2Fa.jpg", None)}
    assert not any(manifests.allows(need) for need in needs(elsewhere, "framesift"))
