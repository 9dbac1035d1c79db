"""The Pulumi program under Pulumi's unit-test mocks: no CLI, no cloud; every resource the
program declares is recorded with its inputs, and the deployment's rules are checked on them."""

from __future__ import annotations

import zipfile
from collections import defaultdict

import pulumi

from tests.support.infra import GCS_AGENT, PROJECT, PUBSUB_AGENT, Recorder, of_type


def test_the_raw_bucket_notifies_the_sampler_topic_with_its_prefixes(deployed):
    recorder, _ = deployed
    notifications = of_type(recorder, "gcp:storage/notification:Notification")
    assert sorted(n["objectNamePrefix"] for n in notifications.values()) == ["images/", "videos/"]
    for notification in notifications.values():
        assert notification["topic"] == f"projects/{PROJECT}/topics/raw-objects"
        assert notification["payloadFormat"] == "JSON_API_V1"
        assert notification["eventTypes"] == ["OBJECT_FINALIZE"]
        assert notification["bucket"] == f"framesift-{PROJECT}-raw"
    grants = of_type(recorder, "gcp:pubsub/topicIAMMember:TopicIAMMember")
    assert grants["gcs-agent-publishes-raw-objects"]["member"] == f"serviceAccount:{GCS_AGENT}"


def _roles_by_member(recorder: Recorder) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = defaultdict(set)
    member_types = (
        ("gcp:projects/iAMMember:IAMMember", "project"),
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "bucket"),
        ("gcp:pubsub/topicIAMMember:TopicIAMMember", "topic"),
        ("gcp:secretmanager/secretIamMember:SecretIamMember", "secretId"),
        ("gcp:serviceaccount/iAMMember:IAMMember", "serviceAccountId"),
        ("gcp:bigquery/datasetIamMember:DatasetIamMember", "datasetId"),
    )
    for typ, scope in member_types:
        for grant in of_type(recorder, typ).values():
            roles[grant["member"]].add(f"{grant['role']} on {grant.get(scope)}")
    return roles


def test_each_function_account_has_exactly_its_intended_roles(deployed):
    recorder, _ = deployed
    roles = _roles_by_member(recorder)
    raw, frames = f"framesift-{PROJECT}-raw", f"framesift-{PROJECT}-frames"

    def account(name: str) -> str:
        return f"serviceAccount:framesift-{name}@{PROJECT}.iam.gserviceaccount.com"

    def own(name: str) -> str:
        return (
            f"projects/{PROJECT}/serviceAccounts/framesift-{name}@{PROJECT}.iam.gserviceaccount.com"
        )

    firestore = f"roles/datastore.user on {PROJECT}"
    dead = "roles/pubsub.publisher on dead-letters"
    assert roles[account("sampler")] == {
        firestore,
        f"roles/storage.objectViewer on {raw}",
        f"roles/storage.objectUser on {frames}",
        "roles/pubsub.publisher on video-segments",
        "roles/pubsub.publisher on frames-sampled",
        dead,
        f"roles/iam.serviceAccountTokenCreator on {own('sampler')}",
    }
    assert roles[account("dedup")] == {
        firestore,
        f"roles/storage.objectViewer on {raw}",
        "roles/pubsub.publisher on frames-kept",
        dead,
    }
    assert roles[account("labeler")] == {
        firestore,
        f"roles/storage.objectViewer on {frames}",
        f"roles/storage.objectUser on {frames}",
        f"roles/storage.objectViewer on {raw}",  # the photos only: see the next test
        dead,
        "roles/secretmanager.secretAccessor on framesift-scale-api-key",
        "roles/secretmanager.secretAccessor on framesift-labelstudio-api-key",
        "roles/secretmanager.secretAccessor on framesift-labelstudio-webhook-secret",
        f"roles/iam.serviceAccountTokenCreator on {own('labeler')}",
    }
    assert roles[account("webhook")] == {
        firestore,
        "roles/secretmanager.secretAccessor on framesift-scale-callback-auth-key",
        "roles/secretmanager.secretAccessor on framesift-labelstudio-webhook-secret",
    }
    assert roles[account("exporter")] == {
        firestore,
        f"roles/bigquery.jobUser on {PROJECT}",
        dead,
        "roles/bigquery.dataEditor on framesift",
    }


def test_the_labeler_reads_only_the_photos_of_the_raw_bucket(deployed):
    recorder, _ = deployed
    grant = of_type(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember")["labeler-reads-photos"]
    assert grant["bucket"] == f"framesift-{PROJECT}-raw"
    assert grant["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/framesift-{PROJECT}-raw/objects/images/")'
    )


def test_no_function_can_write_to_the_bucket_that_triggers_it(deployed):
    recorder, _ = deployed
    writers = {
        grant["member"]
        for grant in of_type(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember").values()
        if grant["bucket"] == f"framesift-{PROJECT}-raw"
        and grant["role"] != "roles/storage.objectViewer"
    }
    assert writers == set()


def test_every_subscription_pushes_with_a_token_and_has_a_dead_letter_topic(deployed):
    recorder, _ = deployed
    subscriptions = of_type(recorder, "gcp:pubsub/subscription:Subscription")
    assert set(subscriptions) == {
        "raw-objects-sampler",
        "video-segments-sampler",
        "frames-sampled-dedup",
        "raw-objects-dedup",
        "frames-kept-labeler",
        "export-requests-exporter",
    }
    for name, subscription in subscriptions.items():
        policy = subscription["deadLetterPolicy"]
        assert policy["deadLetterTopic"] == f"projects/{PROJECT}/topics/{name}-dead-letter"
        assert policy["maxDeliveryAttempts"] >= 5
        push = subscription["pushConfig"]
        topic = subscription["topic"]
        assert push["pushEndpoint"].endswith(f"/projects/{PROJECT}/topics/{topic}")
        assert push["oidcToken"]["serviceAccountEmail"].startswith("framesift-push@")
    dead_publishers = {
        g["topic"]
        for g in of_type(recorder, "gcp:pubsub/topicIAMMember:TopicIAMMember").values()
        if g["member"] == PUBSUB_AGENT
    }
    assert dead_publishers == {f"{name}-dead-letter" for name in subscriptions}


def test_only_the_webhook_is_public(deployed):
    recorder, _ = deployed
    invokers = of_type(recorder, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    public = {i["name"] for i in invokers.values() if i["member"] == "allUsers"}
    assert public == {"framesift-webhook"}


def test_every_function_archive_holds_the_shared_package(deployed):
    from framesift_infra.packaging import function_source

    recorder, _ = deployed
    objects = of_type(recorder, "gcp:storage/bucketObject:BucketObject")
    assert len(objects) == 5
    for name in ("sampler", "dedup", "labeler", "webhook", "exporter"):
        source = function_source(name)
        assert "main.py" in source.files and "requirements.txt" in source.files
        assert "framesift/stages/exporter.py" in source.files
        assert "framesift/adapters/gcp.py" in source.files
        assert objects[f"source-{name}"]["name"] == f"{name}/{source.digest}.zip"


def test_secrets_reach_functions_from_secret_manager_not_plain_values(deployed):
    recorder, _ = deployed
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    for function in functions.values():
        config = function["serviceConfig"]
        plain = config.get("environmentVariables", {})
        assert not [key for key in plain if "KEY" in key or "SECRET" in key]
        for secret in config.get("secretEnvironmentVariables", []):
            assert secret["version"] == "latest"
            assert secret["secret"].startswith("framesift-")
    webhook = functions["webhook"]["serviceConfig"]["secretEnvironmentVariables"]
    assert {s["key"] for s in webhook} == {
        "FRAMESIFT_SCALE_CALLBACK_AUTH_KEY",
        "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET",
    }


def test_the_sampler_gets_the_most_memory_and_time(deployed):
    recorder, _ = deployed
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    timeouts = {n: f["serviceConfig"]["timeoutSeconds"] for n, f in functions.items()}
    assert timeouts["sampler"] == max(timeouts.values()) == 540
    assert functions["sampler"]["serviceConfig"]["availableMemory"] == "4Gi"
    assert (
        functions["labeler"]["serviceConfig"]["environmentVariables"]["FRAMESIFT_WEBHOOK_URL"]
        == "https://framesift-webhook-abc.a.run.app"
    )


def test_warehouse_tables_use_the_exporters_schemas(deployed):
    from framesift.schemas import ALL_TABLES

    recorder, _ = deployed
    tables = of_type(recorder, "gcp:bigquery/table:Table")
    assert {t["tableId"] for t in tables.values()} == {s.name for s in ALL_TABLES}
    import json

    for schema in ALL_TABLES:
        declared = json.loads(tables[f"table-{schema.name}"]["schema"])
        assert [c["name"] for c in declared] == [c.name for c in schema.columns]
        assert tables[f"table-{schema.name}"]["timePartitioning"]["field"] == "created_at"


def test_the_archive_is_a_deployable_zip(tmp_path):
    """What Cloud Build receives: the files named in the archive, importable as a package."""
    from framesift_infra.packaging import function_source

    source = function_source("webhook")
    path = tmp_path / "webhook.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, asset in source.archive.assets.items():
            if isinstance(asset, pulumi.StringAsset):
                archive.writestr(name, asset.text)
            else:
                archive.write(asset.path, name)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        requirements = archive.read("requirements.txt").decode()
    assert {"main.py", "framesift/__init__.py", "framesift/webhook.py"} <= names
    assert "functions-framework" in requirements and "pytest" not in requirements
