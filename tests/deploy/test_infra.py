"""The Pulumi program under Pulumi's unit-test mocks: no CLI, no cloud; every resource the
program declares is recorded with its inputs, and the deployment's rules are checked on them."""

from __future__ import annotations

import re
import tomllib
import zipfile
from collections import defaultdict
from pathlib import Path

import pulumi
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from framesift import topology
from framesift.bookkeeping import EXPIRES, GenerationNode
from framesift.topology import (
    PUSH,
    Collections,
    dead_letter_topics,
    holding_subscription,
    pubsub_max_delivery_attempts,
)
from framesift.vendors.manifest import PREFIX as MANIFESTS
from framesift_dev.loaded import DEPLOYED_ENV, loaded, probe_model
from framesift_infra.config import StackConfig
from framesift_infra.packaging import PACKAGE, REPO_ROOT, FunctionSource, function_source, lock
from framesift_infra.roles import role_permissions
from tests.support.infra import (
    GCS_AGENT,
    PROJECT,
    PROJECT_NUMBER,
    PUBSUB_AGENT,
    SECRET_VALUES,
    Recorder,
    accepted_audiences,
    deploy_under_mocks,
    of_type,
    run_url,
    vendor_secret_values,
)


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
    publish = grants["gcs-agent-publishes-raw-objects"]
    assert publish["member"] == f"serviceAccount:{GCS_AGENT}"
    assert (publish["role"], publish["topic"]) == ("roles/pubsub.publisher", "raw-objects")
    # Each notification is made once the agent may publish (else its creation is refused).
    for name in notifications:
        after = recorder.after("gcp:storage/notification:Notification", name)
        assert ("gcp:pubsub/topicIAMMember:TopicIAMMember", "gcs-agent-publishes-raw-objects") in (
            after
        )


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
        f"roles/storage.objectViewer on {raw}",  # the photos only: see the next test
        "roles/pubsub.publisher on frames-kept",
        dead,
    }
    assert roles[account("labeler")] == {
        firestore,
        f"roles/storage.objectViewer on {frames}",  # Label Studio's labeler writes nothing
        f"roles/storage.objectViewer on {raw}",  # the photos only: see the next test
        dead,
        "roles/secretmanager.secretAccessor on framesift-labelstudio-api-key",
        "roles/secretmanager.secretAccessor on framesift-labelstudio-webhook-secret",
        f"roles/iam.serviceAccountTokenCreator on {own('labeler')}",
    }
    assert roles[account("webhook")] == {
        firestore,
        "roles/secretmanager.secretAccessor on framesift-labelstudio-webhook-secret",
    }
    assert roles[account("exporter")] == {
        firestore,
        f"roles/bigquery.jobUser on {PROJECT}",
        dead,
        "roles/bigquery.dataEditor on framesift",
    }


def test_dedup_and_the_labeler_read_only_the_photos_of_the_raw_bucket(deployed):
    """The raw bucket's videos are the sampler's alone: dedup hashes the photos, the labeler
    signs URLs to them, and neither reads anything else there."""
    recorder, _ = deployed
    bindings = of_type(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember")
    raw = f"framesift-{PROJECT}-raw"
    readers = {
        binding["member"].split("@")[0]: binding.get("condition")
        for binding in bindings.values()
        if binding["bucket"] == raw
    }
    functions = ("sampler", "dedup", "labeler")
    assert set(readers) == {f"serviceAccount:framesift-{name}" for name in functions}
    for name in ("dedup", "labeler"):
        condition = readers[f"serviceAccount:framesift-{name}"]
        assert condition is not None, name
        assert condition["expression"] == (
            f'resource.name.startsWith("projects/_/buckets/{raw}/objects/images/")'
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
    subscriptions = {
        name: subscription
        for name, subscription in of_type(recorder, "gcp:pubsub/subscription:Subscription").items()
        if "pushConfig" in subscription
    }
    assert set(subscriptions) == {
        "raw-objects-sampler",
        "video-segments-sampler",
        "frames-sampled-dedup",
        "raw-objects-dedup",
        "frames-kept-labeler",
        "labeling-rounds-labeler",
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
        # The audience is the service's URL, not the endpoint with its path.
        assert push["pushEndpoint"].startswith(push["oidcToken"]["audience"] + "/projects/")
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
    # What Pub/Sub pushes to takes no traffic from the internet: internal ingress admits
    # Pub/Sub of the same project (https://cloud.google.com/run/docs/securing/ingress#settings).
    ingress = {
        name: function["serviceConfig"]["ingressSettings"]
        for name, function in of_type(recorder, FUNCTION).items()
    }
    assert ingress == {
        name: "ALLOW_ALL" if name == "webhook" else "ALLOW_INTERNAL_ONLY" for name in ingress
    }


def test_each_function_archive_holds_only_what_the_function_loads(deployed):
    """A function ships the modules and installs the distributions it runs, no more: the
    sampler no vendor, no command line, no DuckDB; the labeler its vendor's SDK only."""
    recorder, _ = deployed
    objects = of_type(recorder, "gcp:storage/bucketObject:BucketObject")
    assert len(objects) == 5
    for name in ("sampler", "dedup", "labeler", "webhook", "exporter"):
        source = function_source(name, "labelstudio")
        assert "main.py" in source.files and "requirements.txt" in source.files
        assert "framesift/adapters/gcp/firestore.py" in source.files
        embedded = {"framesift/embedded.py", "framesift/adapters/embedded/__init__.py"}
        assert not {"framesift/cli/__init__.py", *embedded} & set(source.files)
        assert objects[f"source-{name}"]["name"] == f"{name}/{source.digest}.zip"
    # The exporter reads its views' SQL beside its module: the files ship with it.
    views = {f"framesift/warehouse/sql/{p.name}" for p in (PACKAGE / "warehouse" / "sql").iterdir()}
    assert views and views <= set(function_source("exporter", "labelstudio").files)
    assert not views & set(function_source("webhook", "labelstudio").files)
    sampler = function_source("sampler", "labelstudio")
    assert "framesift/stages/sampler.py" in sampler.files
    assert not [
        f for f in sampler.files if f.startswith(("framesift/vendors/", "framesift/stages/l"))
    ]
    pinned = {line.split("==")[0] for line in sampler.requirements.splitlines()}
    assert {"functions-framework", "google-cloud-storage", "ffmpeg-python"} <= pinned
    assert not {"label-studio-sdk", "scaleapi", "typer", "rich", "duckdb", "pandas"} & pinned
    for vendor, sdk, other in (
        ("scale", "scaleapi", "label-studio-sdk"),
        ("labelstudio", "label-studio-sdk", "scaleapi"),
    ):
        labeler = function_source("labeler", vendor).requirements
        assert f"{sdk}==" in labeler and f"{other}==" not in labeler


def test_secrets_reach_functions_from_secret_manager_not_plain_values(deployed):
    recorder, _ = deployed
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    for function in functions.values():
        config = function["serviceConfig"]
        plain = config.get("environmentVariables", {})
        assert not [key for key in plain if "KEY" in key or "SECRET" in key]
        for secret in config.get("secretEnvironmentVariables", []):
            # The version the program made from the secret config, never "latest", which
            # has no version on a first deploy.
            assert secret["version"] == "1"
            assert secret["secret"].startswith("framesift-")
    webhook = functions["webhook"]["serviceConfig"]["secretEnvironmentVariables"]
    assert {s["key"] for s in webhook} == {"FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET"}


def test_the_sampler_gets_the_most_memory_and_time(deployed):
    recorder, _ = deployed
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    timeouts = {n: f["serviceConfig"]["timeoutSeconds"] for n, f in functions.items()}
    assert timeouts["sampler"] == max(timeouts.values()) == 540
    assert functions["sampler"]["serviceConfig"]["availableMemory"] == "4Gi"
    # ffmpeg decodes on the function's vCPUs, not on the host's CPU count.
    sampler = functions["sampler"]["serviceConfig"]
    assert sampler["environmentVariables"]["FRAMESIFT_SAMPLER_CPUS"] == sampler["availableCpu"]
    assert (
        functions["labeler"]["serviceConfig"]["environmentVariables"]["FRAMESIFT_WEBHOOK_URL"]
        # The run.app address: the path a vendor posts to is the path the webhook sees (its
        # routes match the whole path), which the cloudfunctions.net alias does not promise.
        == run_url("framesift-webhook")
    )


def test_warehouse_tables_use_the_exporters_schemas(deployed):
    from framesift.warehouse.schemas import ALL_TABLES

    recorder, _ = deployed
    tables = of_type(recorder, "gcp:bigquery/table:Table")
    assert {t["tableId"] for t in tables.values()} == {s.name for s in ALL_TABLES}
    import json

    for schema in ALL_TABLES:
        declared = json.loads(tables[f"table-{schema.name}"]["schema"])
        assert [c["name"] for c in declared] == [c.name for c in schema.columns]
        assert tables[f"table-{schema.name}"]["timePartitioning"]["field"] == "created_at"


def test_the_archive_is_a_deployable_zip(tmp_path):
    """What Cloud Build receives: the files named in the archive; unpacked, its main.py loads
    and builds its handler from the archive's own framesift (nothing it needs left out)."""
    for name in ("webhook", "sampler", "labeler"):
        unpacked = _unpacked(function_source(name, "labelstudio"), tmp_path / name)
        requirements = (unpacked / "requirements.txt").read_text()
        assert "functions-framework==" in requirements and "pytest" not in requirements
        env = {**DEPLOYED_ENV, "FRAMESIFT_LABELING_VENDOR": "labelstudio"}
        found = loaded(topology.function(name), env, source=unpacked)
        assert found.framesift_files
        assert all(unpacked in file.parents for file in found.framesift_files)


def test_the_labeler_deployed_with_a_model_ships_what_loads_it(tmp_path):
    """With framesift:modelUri the labeler loads the model on its first batch: its archive
    ships the ONNX adapter and pins onnxruntime, and the adapter loads from the archive alone."""
    source = function_source("labeler", "labelstudio", model=True)
    assert "framesift/adapters/onnx.py" in source.files
    assert f"onnxruntime=={lock()['onnxruntime']}\n" in source.requirements
    assert "onnxruntime==" not in function_source("labeler", "labelstudio").requirements
    unpacked = _unpacked(source, tmp_path / "labeler")
    env = {
        **DEPLOYED_ENV,
        "FRAMESIFT_LABELING_VENDOR": "labelstudio",
        "FRAMESIFT_MODEL_URI": str(probe_model()),
    }
    found = loaded(topology.function("labeler"), env, source=unpacked)
    assert unpacked / "framesift" / "adapters" / "onnx.py" in found.framesift_files
    assert "onnxruntime" in found.distributions
    recorder, _ = deploy_under_mocks(
        model_uri="gs://team-models/det/v3.onnx", vendor="labelstudio", secrets=SECRET_VALUES
    )
    archive = of_type(recorder, "gcp:storage/bucketObject:BucketObject")["source-labeler"]
    assert archive["name"] == f"labeler/{source.digest}.zip"


def _unpacked(source: FunctionSource, folder: Path) -> Path:
    """``source`` as Cloud Build receives it (a zip of the archive's files), unpacked."""
    path = folder.with_suffix(".zip")
    with zipfile.ZipFile(path, "w") as archive:
        for archived, asset in source.archive.assets.items():
            if isinstance(asset, pulumi.StringAsset):
                archive.writestr(archived, asset.text)
            else:
                archive.write(asset.path, archived)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    return folder


def test_every_dead_letter_topic_keeps_its_messages_in_a_subscription(deployed):
    """Pub/Sub drops what is published to a topic with no subscription: the backstop would
    lose exactly what it exists to keep."""
    recorder, _ = deployed
    held = {
        subscription["topic"]: subscription
        for subscription in of_type(recorder, "gcp:pubsub/subscription:Subscription").values()
        if "pushConfig" not in subscription
    }
    assert set(held) == set(dead_letter_topics())
    for topic, subscription in held.items():
        assert subscription["name"] == holding_subscription(topic)
        assert subscription["messageRetentionDuration"] == "604800s"
        assert subscription["expirationPolicy"] == {"ttl": ""}


def test_a_first_deploy_needs_no_step_outside_the_program(deployed):
    recorder, stack = deployed
    enabled = {api["service"] for api in of_type(recorder, "gcp:projects/service:Service").values()}
    assert {
        "iamcredentials.googleapis.com",
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "cloudresourcemanager.googleapis.com",  # projects.IAMMember reads and sets its policy
        "billingbudgets.googleapis.com",
    } <= enabled
    assert all(
        api["disableOnDestroy"] is False
        for api in of_type(recorder, "gcp:projects/service:Service").values()
    )
    # Each function waits for what it needs to start: its secrets' versions and read grants.
    versions = of_type(recorder, "gcp:secretmanager/secretVersion:SecretVersion")
    # Pulumi holds the values as secrets (encrypted in the state, never shown in a preview).
    assert all(pulumi.runtime.rpc._special_sig_key in v["secretData"] for v in versions.values())
    assert {v["secretData"]["value"] for v in versions.values()} == {
        SECRET_VALUES["labelstudio-api-key"],
        SECRET_VALUES["labelstudio-webhook-secret"],
    }
    assert stack.mounted == {
        "webhook": ("labelstudio-webhook-secret",),
        "sampler": (),
        "dedup": (),
        "labeler": ("labelstudio-api-key", "labelstudio-webhook-secret"),
        "exporter": (),
    }
    # Builds run as an account of the program's, with the roles a build needs.
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    builder = (
        f"projects/{PROJECT}/serviceAccounts/framesift-build@{PROJECT}.iam.gserviceaccount.com"
    )
    assert {f["buildConfig"]["serviceAccount"] for f in functions.values()} == {builder}
    # https://cloud.google.com/functions/docs/securing/build-custom-sa: logs, the image, the
    # source archive; not roles/cloudbuild.builds.builder.
    assert _roles_by_member(recorder)[
        f"serviceAccount:framesift-build@{PROJECT}.iam.gserviceaccount.com"
    ] == {
        f"roles/logging.logWriter on {PROJECT}",
        f"roles/artifactregistry.writer on {PROJECT}",
        f"roles/storage.objectViewer on framesift-{PROJECT}-sources",
        f"roles/storage.objectViewer on {PROJECT}",
    }
    # The build fetches Cloud Functions' copy of the archive, in the bucket Google names by the
    # project's number and the functions' region; only that bucket's objects.
    [googles_copy] = [
        binding
        for binding in of_type(recorder, "gcp:projects/iAMMember:IAMMember").values()
        if binding["member"].startswith("serviceAccount:framesift-build@")
        and binding["role"] == "roles/storage.objectViewer"
    ]
    [region] = {f["location"] for f in functions.values()}
    assert googles_copy["condition"]["expression"] == (
        'resource.name.startsWith("projects/_/buckets/'
        f'gcf-v2-sources-{PROJECT_NUMBER}-{region}/objects/")'
    )


@pytest.mark.parametrize(
    ("vendor", "mounted"),
    [
        ("manifest", {}),
        (
            "scale",
            {
                "labeler": {"FRAMESIFT_SCALE_API_KEY"},
                "webhook": {"FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"},
            },
        ),
    ],
)
def test_a_function_mounts_only_its_vendors_secrets(vendor, mounted):
    secrets = vendor_secret_values(vendor)
    recorder, _ = deploy_under_mocks(vendor=vendor, secrets=secrets)
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    found = {
        name: {s["key"] for s in f["serviceConfig"].get("secretEnvironmentVariables") or []}
        for name, f in functions.items()
    }
    assert {name: keys for name, keys in found.items() if keys} == mounted
    assert len(of_type(recorder, "gcp:secretmanager/secret:Secret")) == len(secrets)


def test_a_vendor_secret_left_out_of_the_config_says_how_to_set_it():
    with pytest.raises(ValueError, match="pulumi config set --secret framesift:scaleApiKey"):
        deploy_under_mocks(vendor="scale", secrets={})


def test_buckets_refuse_public_access_and_old_versions_expire(deployed):
    recorder, _ = deployed
    buckets = of_type(recorder, "gcp:storage/bucket:Bucket")
    assert {b["publicAccessPrevention"] for b in buckets.values()} == {"enforced"}
    [rule] = buckets["frames"]["lifecycleRules"]
    assert rule["action"]["type"] == "Delete"
    assert rule["condition"]["daysSinceNoncurrentTime"] == 30


def test_dead_letters_raise_an_alert_and_a_budget_is_optional(deployed):
    recorder, _ = deployed
    [metric] = of_type(recorder, "gcp:logging/metric:Metric").values()
    assert 'jsonPayload.message=~"^message dead-lettered"' in metric["filter"]
    [policy] = of_type(recorder, "gcp:monitoring/alertPolicy:AlertPolicy").values()
    filters = [c["conditionThreshold"]["filter"] for c in policy["conditions"]]
    assert any("dead_letter_message_count" in f for f in filters)
    assert of_type(recorder, "gcp:billing/budget:Budget") == {}
    budgeted, _ = deploy_under_mocks(billing_account="000000-AAAAAA-BBBBBB", monthly_budget_usd=50)
    [budget] = of_type(budgeted, "gcp:billing/budget:Budget").values()
    assert budget["amount"]["specifiedAmount"]["units"] == "50"
    # The Budget API names projects by number (pulumi/pulumi-gcp#514).
    assert budget["budgetFilter"]["projects"] == [f"projects/{PROJECT_NUMBER}"]


def test_functions_deploy_the_locked_versions_of_every_dependency():
    """Two deploys of one commit install the same code: each archive's requirements are exact
    pins from the lock, and the lock pins every runtime dependency within pyproject's range."""
    pins = {name: Requirement(f"{name}=={version}") for name, version in lock().items()}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for declared in map(Requirement, project["dependencies"]):
        pinned = pins[canonicalize_name(declared.name)]
        assert declared.specifier.contains(next(iter(pinned.specifier)).version), declared
    for name in ("sampler", "labeler"):
        for line in function_source(name, "scale").requirements.splitlines():
            requirement = Requirement(line)
            assert str(requirement.specifier).startswith("==")
            assert lock()[canonicalize_name(requirement.name)] == line.split("==")[1]


def test_the_webhook_can_go_without_allusers_where_an_organisation_refuses_it():
    recorder, _ = deploy_under_mocks(webhook_access="noInvokerCheck")
    invokers = of_type(recorder, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert "allUsers" not in {i["member"] for i in invokers.values()}
    check = of_type(recorder, "command:local:Command")["webhook-no-invoker-check"]
    assert check["create"] == (
        "gcloud run services update framesift-webhook --region=europe-west1"
        f" --project={PROJECT} --no-invoker-iam-check --quiet"
    )
    with pytest.raises(ValueError, match="webhookAccess"):
        deploy_under_mocks(webhook_access="public")


def test_a_model_sizes_the_labeler_lets_it_read_the_model_alone_and_schedules_rounds(deployed):
    plain, _ = deployed
    [labeler] = [
        f
        for n, f in of_type(plain, "gcp:cloudfunctionsv2/function:Function").items()
        if n == "labeler"
    ]
    assert "FRAMESIFT_MODEL_URI" not in labeler["serviceConfig"]["environmentVariables"]
    assert "labeling-round" not in of_type(plain, "gcp:cloudscheduler/job:Job")

    recorder, _ = deploy_under_mocks(model_uri="gs://team-models/det/v3.onnx", labeling_budget=200)
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    config = functions["labeler"]["serviceConfig"]
    # benchmarks/inference.py: the model's peak memory and its inference on the cores it gets.
    assert (config["availableMemory"], config["availableCpu"]) == ("1Gi", "2")
    assert config["maxInstanceRequestConcurrency"] == 1
    env = config["environmentVariables"]
    assert env["FRAMESIFT_MODEL_URI"] == "gs://team-models/det/v3.onnx"
    assert env["FRAMESIFT_MODEL_THREADS"] == "2"
    assert env["FRAMESIFT_LABELING_BUDGET"] == "200"
    [model_read] = [
        g
        for g in of_type(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember").values()
        if g["bucket"] == "team-models"
    ]
    assert model_read["role"] == "roles/storage.objectViewer"
    assert model_read["condition"]["expression"] == (
        'resource.name == "projects/_/buckets/team-models/objects/det/v3.onnx"'
    )
    job = of_type(recorder, "gcp:cloudscheduler/job:Job")["labeling-round"]
    assert job["pubsubTarget"]["topicName"].endswith("/topics/labeling-rounds")
    assert job["pubsubTarget"]["attributes"] == {"framesift-round": "scheduled"}


FUNCTION = "gcp:cloudfunctionsv2/function:Function"
API = "gcp:projects/service:Service"
# Every kind of IAM binding the program declares, and its input naming the member.
BINDINGS = (
    "gcp:projects/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:pubsub/topicIAMMember:TopicIAMMember",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:bigquery/datasetIamMember:DatasetIamMember",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
)


def _bindings_of(recorder: Recorder, member: str) -> set[tuple[str, str]]:
    return {
        (typ, name)
        for typ in BINDINGS
        for name, binding in of_type(recorder, typ).items()
        if binding["member"] == member
    }


def test_every_resource_is_created_after_every_api_it_may_need(deployed):
    """On a new project a resource of a disabled API fails: what Pulumi registers waits for
    the APIs, whether through depends_on or an input."""
    recorder, _ = deployed
    apis = {(typ, name) for typ, name, _ in recorder.resources if typ == API}
    assert len(apis) >= 14
    for typ, name, _ in recorder.resources:
        if typ != API:
            assert apis <= recorder.after(typ, name), (typ, name)


def test_a_first_deploy_creates_each_function_after_its_grants_and_secrets(deployed):
    """A build before the build account's grants fails; an instance before its own account's
    grants or its secrets' versions fails to start or fails its first events."""
    recorder, _ = deployed
    builder = f"serviceAccount:framesift-build@{PROJECT}.iam.gserviceaccount.com"
    build_grants = _bindings_of(recorder, builder)
    assert len(build_grants) >= 3
    secrets = of_type(recorder, "gcp:secretmanager/secret:Secret")
    versions = of_type(recorder, "gcp:secretmanager/secretVersion:SecretVersion")
    for name, function in of_type(recorder, FUNCTION).items():
        after = recorder.after(FUNCTION, name)
        assert build_grants <= after, name
        account = f"serviceAccount:{function['serviceConfig']['serviceAccountEmail']}"
        own = _bindings_of(recorder, account)
        assert own and own <= after, name
        for mounted in function["serviceConfig"].get("secretEnvironmentVariables") or []:
            [secret] = [k for k, v in secrets.items() if v["secretId"] == mounted["secret"]]
            [version] = [k for k, v in versions.items() if v["secret"] == f"{secret}-id"]
            assert ("gcp:secretmanager/secretVersion:SecretVersion", version) in after


def test_every_push_carries_a_token_its_function_accepts(deployed):
    """Cloud Run checks an ID token's audience against the service's run.app URL (and custom
    audiences): a push with the function's cloudfunctions.net url as audience is refused, and
    each refusal counts as a delivery attempt."""
    recorder, _ = deployed
    functions = of_type(recorder, FUNCTION)
    subscriptions = of_type(recorder, "gcp:pubsub/subscription:Subscription")
    pushed = 0
    for spec in topology.FUNCTIONS:
        function = functions[spec.name]
        for topic in spec.subscribes:
            push = subscriptions[spec.subscription(topic)]["pushConfig"]
            assert push["oidcToken"]["audience"] in accepted_audiences(function), spec.name
            # Pushed to the run.app address, which internal ingress admits Pub/Sub to.
            assert push["pushEndpoint"] == (
                f"{function['serviceConfig']['uri']}/projects/{PROJECT}/topics/{topic}"
            )
            pushed += 1
    assert pushed == 7


def test_each_push_subscription_is_created_after_its_push_may_be_accepted(deployed):
    """A push before the invoker may call the function, or before Pub/Sub may sign as the
    invoker, is refused, and counts as a delivery attempt."""
    recorder, _ = deployed
    invokers = of_type(recorder, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    pushing = {
        name: subscription
        for name, subscription in of_type(recorder, "gcp:pubsub/subscription:Subscription").items()
        if "pushConfig" in subscription
    }
    assert pushing
    token = ("gcp:serviceaccount/iAMMember:IAMMember", "push-invoker-token-creator")
    assert of_type(recorder, token[0])[token[1]]["member"] == PUBSUB_AGENT
    for name, subscription in pushing.items():
        after = recorder.after("gcp:pubsub/subscription:Subscription", name)
        assert token in after, name
        email = subscription["pushConfig"]["oidcToken"]["serviceAccountEmail"]
        [grant] = [
            k
            for k, v in invokers.items()
            if v["member"] == f"serviceAccount:{email}"
            and subscription["pushConfig"]["pushEndpoint"].startswith(f"https://{v['name']}-")
        ]
        assert ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", grant) in after, name


def test_the_alert_policy_waits_until_monitoring_knows_its_metric(deployed):
    """hashicorp/terraform-provider-google#11102: an alert on a log-based metric made moments
    before is refused with a 404; the policy waits for a check that Monitoring describes it."""
    recorder, _ = deployed
    command = "command:local:Command"
    metric = ("gcp:logging/metric:Metric", "dead-letters-metric")
    wait = of_type(recorder, command)["dead-letters-metric-known"]
    assert metric in recorder.after(command, "dead-letters-metric-known")
    assert (
        f"monitoring.googleapis.com/v3/projects/{PROJECT}/metricDescriptors/"
        "logging.googleapis.com/user/framesift/dead-letters"
    ) in wait["create"]
    for name in of_type(recorder, "gcp:monitoring/alertPolicy:AlertPolicy"):
        after = recorder.after("gcp:monitoring/alertPolicy:AlertPolicy", name)
        assert {metric, (command, "dead-letters-metric-known")} <= after


def test_push_subscriptions_retry_and_dead_letter_as_sized(deployed):
    """Each push waits out its function's timeout before Pub/Sub pushes it again, backs off as
    topology.PUSH says, and is dead-lettered by Pub/Sub only a few attempts after the function's
    own count (FRAMESIFT_MAX_DELIVERY_ATTEMPTS) would have."""
    recorder, _ = deployed
    functions = of_type(recorder, FUNCTION)
    subscriptions = of_type(recorder, "gcp:pubsub/subscription:Subscription")
    own_limit = StackConfig.max_delivery_attempts
    for spec in topology.FUNCTIONS:
        timeout = functions[spec.name]["serviceConfig"]["timeoutSeconds"]
        for topic in spec.subscribes:
            subscription = subscriptions[spec.subscription(topic)]
            assert subscription["ackDeadlineSeconds"] == PUSH.ack_deadline_s >= timeout
            assert subscription["retryPolicy"] == {
                "minimumBackoff": f"{PUSH.minimum_backoff_s}s",
                "maximumBackoff": f"{PUSH.maximum_backoff_s}s",
            }
            attempts = subscription["deadLetterPolicy"]["maxDeliveryAttempts"]
            assert attempts == pubsub_max_delivery_attempts(own_limit) > own_limit
            assert subscription["messageRetentionDuration"] == f"{PUSH.retention_s}s"


def test_the_pubsub_agent_may_sign_pushes_and_dead_letter_and_nothing_more(deployed):
    """Pub/Sub's service agent mints the invoker's OIDC tokens (token creator on that account:
    https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions), and forwards a
    message to a dead-letter topic only with publisher on the topic and subscriber on the
    subscription (https://cloud.google.com/pubsub/docs/handling-failures)."""
    recorder, _ = deployed
    invoker = f"projects/{PROJECT}/serviceAccounts/framesift-push@{PROJECT}.iam.gserviceaccount.com"
    pushing = [
        (name, subscription)
        for name, subscription in of_type(recorder, "gcp:pubsub/subscription:Subscription").items()
        if "pushConfig" in subscription
    ]
    expected = {("roles/iam.serviceAccountTokenCreator", invoker)}
    for name, subscription in pushing:
        expected.add(("roles/pubsub.subscriber", name))
        dead_topic = subscription["deadLetterPolicy"]["deadLetterTopic"].rsplit("/", 1)[1]
        expected.add(("roles/pubsub.publisher", dead_topic))
    scopes = {
        "gcp:serviceaccount/iAMMember:IAMMember": "serviceAccountId",
        "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": "subscription",
        "gcp:pubsub/topicIAMMember:TopicIAMMember": "topic",
    }
    granted = {
        (binding["role"], binding[scopes[typ]])
        for typ, name in _bindings_of(recorder, PUBSUB_AGENT)
        for binding in [of_type(recorder, typ)[name]]
    }
    assert granted == expected


# Permissions no account the program binds may get from a predefined role: changing who may do
# what, acting as another account, or destroying a store the dataset lives in.
_NEVER_GRANTED = re.compile(
    r"\.setIamPolicy$|^iam\.serviceAccounts\.actAs$|^iam\.serviceAccountKeys\.create$"
    r"|^storage\.buckets\.delete$|^datastore\.databases\.delete$|^bigquery\.datasets\.delete$"
    r"|^secretmanager\.(secrets\.delete|versions\.add)$|^pubsub\.topics\.delete$"
)


def test_every_bound_role_is_defined_as_google_defines_it_and_grants_nothing_dangerous():
    """Each role the program binds, with every option on, is one whose definition is vendored
    (framesift_infra.roles, refreshed by scripts/iam-roles): a role without one could not be
    checked, and the vendored definitions name only roles still bound."""
    everything_on, _ = deploy_under_mocks(
        raw_prefix="videos/",
        vendor="labelstudio",
        labelstudio_url="https://labelstudio.example",
        secrets=SECRET_VALUES,
        model_uri="gs://team-models/det/v3.onnx",
        labeling_budget=200,
        billing_account="000000-AAAAAA-BBBBBB",
        monthly_budget_usd=50,
    )
    bound = {
        inputs["role"]
        for _, _, inputs in everything_on.resources
        if str(inputs.get("role", "")).startswith("roles/")
    }
    defined = role_permissions()
    assert bound - defined.keys() == set(), "vendor them with scripts/iam-roles ROLE"
    assert defined.keys() - bound == set(), "no longer bound: remove their files"
    dangerous = {
        (role, permission)
        for role in bound
        for permission in defined[role]
        if _NEVER_GRANTED.search(permission)
    }
    assert dangerous == set()


def test_the_labeler_writes_only_where_its_vendor_writes():
    """The manifest vendor writes its manifests under their prefix of the frames bucket, and the
    labeler's account may write there alone; the other vendors' labeler writes nothing."""
    recorder, _ = deploy_under_mocks(vendor="manifest")
    labeler = f"serviceAccount:framesift-labeler@{PROJECT}.iam.gserviceaccount.com"
    writes = [
        binding
        for binding in of_type(recorder, "gcp:storage/bucketIAMMember:BucketIAMMember").values()
        if binding["member"] == labeler and binding["role"] == "roles/storage.objectUser"
    ]
    [manifests] = writes
    frames = f"framesift-{PROJECT}-frames"
    assert manifests["bucket"] == frames
    assert manifests["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{frames}/objects/{MANIFESTS}")'
    )


def test_the_dedup_index_generations_expire_by_a_ttl_policy_on_the_field_they_carry(deployed):
    """A tiered index's generation nodes carry ``expire_at``; Firestore deletes them after it
    only if a TTL policy names that field on that collection group (one per group)."""
    recorder, _ = deployed
    fields = of_type(recorder, "gcp:firestore/field:Field")
    ttl = [field for field in fields.values() if "ttlConfig" in field]
    assert len(ttl) == 1
    assert (ttl[0]["collection"], ttl[0]["field"]) == (Collections.PHASH_BUCKETS, EXPIRES)
    assert ttl[0]["indexConfig"] == {}  # a TTL timestamp nobody queries: not indexed
    assert EXPIRES in GenerationNode.model_fields


def test_a_tiered_index_reaches_dedup_only_when_set(
    deployed,
):
    """dedupWindowHours and dedupTailTables become dedup's FRAMESIFT_DEDUP_WINDOW_HOURS and
    FRAMESIFT_DEDUP_TAIL_TABLES; unset, no function carries either (the exact index)."""
    plain, _ = deployed
    for function in of_type(plain, "gcp:cloudfunctionsv2/function:Function").values():
        env = function["serviceConfig"]["environmentVariables"]
        assert not {"FRAMESIFT_DEDUP_WINDOW_HOURS", "FRAMESIFT_DEDUP_TAIL_TABLES"} & set(env)

    recorder, _ = deploy_under_mocks(dedup_window_hours=1, dedup_tail_tables=150)
    dedup = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")["dedup"]
    env = dedup["serviceConfig"]["environmentVariables"]
    assert (env["FRAMESIFT_DEDUP_WINDOW_HOURS"], env["FRAMESIFT_DEDUP_TAIL_TABLES"]) == ("1", "150")
