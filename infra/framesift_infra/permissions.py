"""Which IAM permission each Google API call needs, and which permissions each role the program
grants holds: a table of rules from Google's documentation (each names its source) and the
roles' definitions (``framesift_infra.roles``), so that the calls the functions really make
(recorded on the emulated stack by ``framesift_dev.apicalls``) can be checked against the roles
the program gives their accounts, which no emulator enforces.

Only what the functions call is listed; a Google API call no rule matches is an error of the
check itself (:class:`Unmapped`), so a new call cannot slip through unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from framesift_infra.roles import role_permissions

STORAGE_IAM = "https://cloud.google.com/storage/docs/access-control/iam-json"
STORAGE_CLIENT_METADATA = (
    "https://github.com/googleapis/python-storage: google/cloud/storage/_bucket_metadata_cache.py"
    " (3.x; 'On 403 (Forbidden), cache fallback values')"
)
SIGNED_URLS = "https://cloud.google.com/storage/docs/access-control/signed-urls"
SIGN_BLOB = "https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/signBlob"
BIGQUERY_IAM = "https://cloud.google.com/bigquery/docs/access-control"
BIGQUERY_JOBS_GET = "https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get"
FIRESTORE_IAM = "https://cloud.google.com/firestore/docs/security/iam"
PUBSUB_IAM = "https://cloud.google.com/pubsub/docs/access-control"


class Scope(StrEnum):
    PROJECT = "project"
    BUCKET = "bucket"
    TOPIC = "topic"
    DATASET = "dataset"
    SELF = "self"  # the function's own service account


@dataclass(frozen=True)
class Need:
    """A permission a call needs, on what (``resource``: a bucket, topic or dataset name;
    ``object``: the object within a bucket, for grants limited to a prefix)."""

    permission: str
    scope: Scope
    resource: str = ""
    object: str = ""


@dataclass(frozen=True)
class Rule:
    api: str  # "http", "grpc" or "sign" (see framesift_dev.apicalls)
    methods: tuple[str, ...]  # HTTP methods or gRPC method names; () for any
    pattern: str  # on the HTTP path or the gRPC method; named groups bucket/object/dataset
    permissions: tuple[str, ...]
    scope: Scope
    source: str


# Data a BigQuery job reads and writes: the load into a staging table, the MERGE from it.
_JOB_DATA = ("bigquery.tables.create", "bigquery.tables.getData", "bigquery.tables.updateData")
_BQ = r"^(?:/upload)?/bigquery/v2/projects/[^/]+"

RULES: tuple[Rule, ...] = (
    # Cloud Storage (JSON API; fake-gcs-server serves the same paths).
    # The client's own background read of a bucket's metadata (for its telemetry): it takes a
    # 403 as an answer and falls back, so no permission is needed.
    Rule("http", ("GET",), r"^/storage/v1/b/(?P<bucket>[^/]+)$", (), Scope.BUCKET,
         STORAGE_CLIENT_METADATA),
    Rule("http", ("GET",), r"^/storage/v1/b/(?P<bucket>[^/]+)/o$", ("storage.objects.list",),
         Scope.BUCKET, STORAGE_IAM),
    Rule("http", ("GET",), r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$",
         ("storage.objects.get",), Scope.BUCKET, STORAGE_IAM),
    # Writing an object that may exist (a redelivery rewrites it) needs delete too.
    Rule("http", ("POST", "PUT"), r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$",
         ("storage.objects.create", "storage.objects.delete"), Scope.BUCKET, STORAGE_IAM),
    Rule("http", ("PATCH",), r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$",
         ("storage.objects.update",), Scope.BUCKET, STORAGE_IAM),
    Rule("http", ("DELETE",), r"^/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$",
         ("storage.objects.delete",), Scope.BUCKET, STORAGE_IAM),
    # A URL handed out for reading: deployed, signed through signBlob with the function's own
    # account, and it reads with that account's rights.
    Rule("sign", (), r"", ("storage.objects.get",), Scope.BUCKET, SIGNED_URLS),
    Rule("sign", (), r"", ("iam.serviceAccounts.signBlob",), Scope.SELF, SIGN_BLOB),
    # BigQuery (REST v2; the emulator serves the same paths).
    Rule("http", ("POST",), _BQ + r"/datasets$", ("bigquery.datasets.create",), Scope.PROJECT,
         BIGQUERY_IAM),
    Rule("http", ("GET",), _BQ + r"/datasets/(?P<dataset>[^/]+)$", ("bigquery.datasets.get",),
         Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("POST",), _BQ + r"/datasets/(?P<dataset>[^/]+)/tables$",
         ("bigquery.tables.create",), Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("GET",), _BQ + r"/datasets/(?P<dataset>[^/]+)/tables/[^/]+$",
         ("bigquery.tables.get",), Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("PATCH", "PUT"), _BQ + r"/datasets/(?P<dataset>[^/]+)/tables/[^/]+$",
         ("bigquery.tables.update",), Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("DELETE",), _BQ + r"/datasets/(?P<dataset>[^/]+)/tables/[^/]+$",
         ("bigquery.tables.delete",), Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("GET",), _BQ + r"/datasets/(?P<dataset>[^/]+)/tables/[^/]+/data$",
         ("bigquery.tables.getData",), Scope.DATASET, BIGQUERY_IAM),
    Rule("http", ("POST",), _BQ + r"/(?:jobs|queries)$", ("bigquery.jobs.create",),
         Scope.PROJECT, BIGQUERY_IAM),
    Rule("http", ("POST",), _BQ + r"/(?:jobs|queries)$", _JOB_DATA, Scope.DATASET, BIGQUERY_IAM),
    # Its creator reads its own job with no further permission.
    Rule("http", ("GET",), _BQ + r"/(?:jobs|queries)/[^/]+$", (), Scope.PROJECT,
         BIGQUERY_JOBS_GET),
    # Pub/Sub (gRPC).
    Rule("grpc", ("/google.pubsub.v1.Publisher/Publish",), r"", ("pubsub.topics.publish",),
         Scope.TOPIC, PUBSUB_IAM),
    # Firestore (gRPC). A write without a precondition (merge, set) needs create and update.
    Rule("grpc", ("/google.firestore.v1.Firestore/BatchGetDocuments",
                  "/google.firestore.v1.Firestore/GetDocument"), r"",
         ("datastore.entities.get",), Scope.PROJECT, FIRESTORE_IAM),
    Rule("grpc", ("/google.firestore.v1.Firestore/RunQuery",
                  "/google.firestore.v1.Firestore/ListDocuments"), r"",
         ("datastore.entities.list", "datastore.entities.get"), Scope.PROJECT, FIRESTORE_IAM),
    Rule("grpc", ("/google.firestore.v1.Firestore/Commit",), r"",
         ("datastore.entities.create", "datastore.entities.update"), Scope.PROJECT,
         FIRESTORE_IAM),
    Rule("grpc", ("/google.firestore.v1.Firestore/BeginTransaction",
                  "/google.firestore.v1.Firestore/Rollback"), r"",
         ("datastore.databases.get",), Scope.PROJECT, FIRESTORE_IAM),
)  # fmt: skip

# Every permission of each predefined role the program grants, as Google defines the role.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = role_permissions()

# Paths of Google's REST APIs among the HTTP calls a function makes (the rest go to vendors).
_GOOGLE_HTTP = re.compile(r"^/(?:upload/|download/)?(?:storage|bigquery)/")


class Unmapped(LookupError):
    """A Google API call no rule covers: add its rule, with its source, before trusting the
    check."""


@dataclass(frozen=True)
class Grant:
    """A role bound to an account, on what (a resource of ``scope``; ``object_prefix``: only
    the objects under it, for a conditional binding)."""

    role: str
    scope: Scope
    resource: str = ""
    object_prefix: str = ""

    def allows(self, need: Need) -> bool:
        if need.permission not in ROLE_PERMISSIONS.get(self.role, frozenset()):
            return False
        if self.scope is Scope.PROJECT:
            return need.scope is not Scope.SELF
        return (
            self.scope is need.scope
            and self.resource in (need.resource, "")
            and need.object.startswith(self.object_prefix)
        )


def needs(call: Mapping[str, Any], dataset: str) -> list[Need]:
    """What one recorded call needs, from every rule it matches (a BigQuery job needs the
    project's jobs and the dataset's tables); none for a call to a vendor. ``dataset`` is the
    warehouse's, which every BigQuery job reads and writes."""
    api = call["api"]
    if api == "http" and not _GOOGLE_HTTP.match(call["path"]):
        return []
    target = call.get("method", "") if api == "grpc" else call.get("path", "")
    found: list[Need] = []
    matched = False
    for rule in RULES:
        groups = _match(rule, call, target)
        if groups is None:
            continue
        matched = True
        resource, obj = _resource(rule, call, groups, dataset)
        found += [Need(permission, rule.scope, resource, obj) for permission in rule.permissions]
    if not matched:
        raise Unmapped(f"no permission rule for {dict(call)}")
    return found


def _match(rule: Rule, call: Mapping[str, Any], target: str) -> dict[str, str | None] | None:
    """The rule's named groups if it covers the call, else None."""
    if rule.api != call["api"]:
        return None
    if call["api"] == "http" and call["method"] not in rule.methods:
        return None
    if call["api"] == "grpc" and target not in rule.methods:
        return None
    if not rule.pattern:
        return {}
    found = re.match(rule.pattern, target)
    return found.groupdict() if found else None


def _resource(
    rule: Rule, call: Mapping[str, Any], groups: Mapping[str, str | None], dataset: str
) -> tuple[str, str]:
    if rule.scope is Scope.BUCKET:
        if call["api"] == "sign":
            return call["bucket"], call["object"]
        # An upload names its object in its body: the recorder reads it from there.
        named = groups.get("object")
        obj = unquote(named) if named else str(call.get("object", ""))
        return unquote(groups.get("bucket") or ""), obj
    if rule.scope is Scope.DATASET:
        return groups.get("dataset") or dataset, ""
    if rule.scope is Scope.TOPIC:
        return str(call.get("resource", "")).rsplit("/", 1)[-1], ""
    return "", ""
