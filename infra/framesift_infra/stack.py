"""The whole bundle: buckets, topics with dead letters, five functions with one service account
each and only the roles it needs, Firestore, BigQuery, Cloud Scheduler and Secret Manager.

Event functions are served as Cloud Run-backed functions (2nd gen) fed by push subscriptions
that this program owns, rather than Eventarc triggers: so each subscription gets its own
dead-letter topic, a maximum number of delivery attempts and a retry backoff, and pushes with
an OIDC token of a dedicated invoker account (functions-framework turns the push body into the
CloudEvent the entry point takes, as it does under ``framesift dev up``). The webhook is the only
function reachable without that token; vendors authenticate to it with the shared secrets.

A first ``pulumi up`` on a new project works with no step outside it: the APIs are enabled
first and every resource waits for them; secret values come from the stack's secret config
and each function waits for its secrets' versions and its accessor grants; the functions build
with an account of their own; every dead-letter topic keeps its messages in a subscription.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from framesift.messages import ROUND_MESSAGE
from framesift.topology import (
    DEDUP,
    EXPORTER,
    FUNCTIONS,
    LABELER,
    SAMPLER,
    WEBHOOK,
    FunctionSpec,
    Topics,
    holding_subscription,
    pubsub_max_delivery_attempts,
)
from framesift.warehouse.schemas import ALL_TABLES
from framesift_infra.config import StackConfig
from framesift_infra.packaging import function_source
from framesift_infra.secrets import SECRETS, VENDOR_SECRETS, secrets_of

R = TypeVar("R", bound=pulumi.Resource)

# StackConfig.webhook_access: disable Cloud Run's invoker check instead of binding allUsers.
NO_INVOKER_CHECK = "noInvokerCheck"
WEBHOOK_ACCESS = ("allUsers", NO_INVOKER_CHECK)
# What the functions' builds need (Cloud Build writing the image to Artifact Registry, logs).
BUILD_ROLES = (
    "roles/cloudbuild.builds.builder",
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
)
# The log line framesift.delivery writes when it dead-letters a message (JSON, for Cloud
# Logging, from a function's Cloud Run revision).
DEAD_LETTER_LOG_FILTER = (
    'resource.type="cloud_run_revision" AND severity>=ERROR'
    ' AND jsonPayload.message=~"^message dead-lettered"'
)

# The APIs the bundle calls or is deployed with (iamcredentials: signBlob for signed URLs).
APIS = (
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)


@dataclass(frozen=True)
class Deployment:
    """What the infra adds to a function of :mod:`framesift.topology` (which says its entry
    point and topics): its size, and what its service account may touch."""

    memory: str
    cpu: str
    timeout_s: int
    max_instances: int
    concurrency: int
    reads: tuple[str, ...] = ()  # bucket keys: "raw", "frames"
    writes: tuple[str, ...] = ()
    # Reads the photos under the raw bucket's images prefix (and nothing else there): the
    # labeler hands vendors URLs signed with its own account for the photos it labels.
    reads_photos: bool = False
    project_roles: tuple[str, ...] = ("roles/datastore.user",)
    signs_urls: bool = False
    warehouse: bool = False


DEPLOYMENTS = {
    # Decodes video: the most memory and the longest timeout (segments of 300 s each).
    SAMPLER.name: Deployment(
        memory="4Gi",
        cpu="2",
        timeout_s=540,
        max_instances=20,
        concurrency=1,
        reads=("raw",),
        writes=("frames",),
        signs_urls=True,
    ),
    DEDUP.name: Deployment(
        memory="1Gi",
        cpu="1",
        timeout_s=300,
        max_instances=20,
        concurrency=4,
        reads=("raw",),
    ),
    LABELER.name: Deployment(
        memory="512Mi",
        cpu="1",
        timeout_s=300,
        max_instances=10,
        concurrency=4,
        reads=("frames",),
        writes=("frames",),  # the manifest vendor's manifests/ objects
        reads_photos=True,
        signs_urls=True,
    ),
    WEBHOOK.name: Deployment(
        memory="512Mi",
        cpu="1",
        timeout_s=60,
        max_instances=20,
        concurrency=40,
    ),
    EXPORTER.name: Deployment(
        memory="2Gi",
        cpu="1",
        timeout_s=540,
        max_instances=1,
        concurrency=1,
        project_roles=("roles/datastore.user", "roles/bigquery.jobUser"),
        warehouse=True,
    ),
}

# The labeler with a pre-labeling model (benchmarks/inference.py, docs/benchmarks.md): a
# YOLOv8n-sized model took the labeler's peak memory from 69 to 166 MiB, and a 1080p frame's
# pre-label from 61 ms on one thread to 41 ms on two. So: 2 vCPUs and one batch at a time per
# instance (inference gets both cores, as FRAMESIFT_MODEL_THREADS says), 1 GiB for a model
# several times that size.
MODEL_LABELER = replace(DEPLOYMENTS[LABELER.name], memory="1Gi", cpu="2", concurrency=1)


def deployment_of(spec: FunctionSpec, config: StackConfig) -> Deployment:
    """A function's size and access: the labeler's grows with a model."""
    if spec is LABELER and config.model_uri:
        return MODEL_LABELER
    return DEPLOYMENTS[spec.name]


@dataclass(frozen=True)
class Secret:
    secret: gcp.secretmanager.Secret
    version: gcp.secretmanager.SecretVersion


@dataclass
class Stack:
    """What the program made, for its outputs and its tests."""

    buckets: dict[str, gcp.storage.Bucket] = field(default_factory=dict)
    topics: dict[str, gcp.pubsub.Topic] = field(default_factory=dict)
    accounts: dict[str, gcp.serviceaccount.Account] = field(default_factory=dict)
    functions: dict[str, gcp.cloudfunctionsv2.Function] = field(default_factory=dict)
    resources: list[pulumi.Resource] = field(default_factory=list)
    apis: list[gcp.projects.Service] = field(default_factory=list)
    # Per function: the secrets it mounts, and what it waits for before it is created.
    mounted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    waits_for: dict[str, tuple[pulumi.Resource, ...]] = field(default_factory=dict)

    def add(self, resource: R) -> R:
        self.resources.append(resource)
        return resource

    def opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options of every resource: created once the APIs are enabled (on a new project a
        resource of a disabled API fails), after ``depends_on``."""
        return pulumi.ResourceOptions(depends_on=[*self.apis, *depends_on])


def deploy(config: StackConfig) -> Stack:
    if config.webhook_access not in WEBHOOK_ACCESS:
        raise ValueError(
            f"framesift:webhookAccess is {config.webhook_access!r}: {' or '.join(WEBHOOK_ACCESS)}"
        )
    stack = Stack()
    prefix = f"{config.name_prefix}-{config.project}"
    project_number = gcp.organizations.get_project(project_id=config.project).number
    stack.apis = [
        stack.add(
            gcp.projects.Service(
                f"api-{api.split('.', 1)[0]}",
                project=config.project,
                service=api,
                disable_on_destroy=False,  # other things in the project may use it
            )
        )
        for api in APIS
    ]

    stack.buckets["raw"] = stack.add(
        gcp.storage.Bucket(
            "raw",
            name=f"{prefix}-raw",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            lifecycle_rules=[
                {
                    "action": {"type": "SetStorageClass", "storage_class": "COLDLINE"},
                    "condition": {"age": config.cold_after_days},
                }
            ],
            opts=stack.opts(),
        )
    )
    stack.buckets["frames"] = stack.add(
        gcp.storage.Bucket(
            "frames",
            name=f"{prefix}-frames",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            # A redelivered manifest is rewritten whole, each time a new version: keep the
            # older ones for a while, not for ever.
            versioning={"enabled": True},
            lifecycle_rules=[
                {
                    "action": {"type": "Delete"},
                    "condition": {
                        "days_since_noncurrent_time": config.noncurrent_days,
                        "with_state": "ARCHIVED",
                    },
                }
            ],
            opts=stack.opts(),
        )
    )
    stack.buckets["sources"] = stack.add(
        gcp.storage.Bucket(
            "sources",
            name=f"{prefix}-sources",
            location=config.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            labels=config.labels,
            opts=stack.opts(),
        )
    )

    for topic in Topics.ALL:
        stack.topics[topic] = stack.add(
            gcp.pubsub.Topic(topic, name=topic, labels=config.labels, opts=stack.opts())
        )

    _bucket_notifications(stack, config)
    secrets = _secrets(stack, config)
    dataset = _warehouse(stack, config)
    _firestore(stack, config)

    pubsub_agent = f"serviceAccount:service-{project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    invoker = stack.add(
        gcp.serviceaccount.Account(
            "push-invoker",
            account_id="framesift-push",
            display_name="framesift: Pub/Sub pushes to the functions",
            opts=stack.opts(),
        )
    )
    # Pub/Sub mints the invoker's OIDC tokens for the pushes.
    stack.add(
        gcp.serviceaccount.IAMMember(
            "push-invoker-token-creator",
            service_account_id=invoker.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=pubsub_agent,
            opts=stack.opts(),
        )
    )
    builder = _build_account(stack, config)
    env = _environment(config, stack)
    for spec in FUNCTIONS:  # in the table's order: the webhook first, whose URL the labeler needs
        _function(stack, config, spec, env, secrets, dataset, invoker, pubsub_agent, builder)
    _hold(stack, config, Topics.DEAD_LETTERS)

    _scheduler(stack, config)
    _alerts(stack, config)
    pulumi.export("raw_bucket", stack.buckets["raw"].name)
    pulumi.export("frames_bucket", stack.buckets["frames"].name)
    webhook = stack.functions[WEBHOOK.name].url
    pulumi.export("scale_callback_url", webhook.apply(lambda url: f"{url}/scale"))
    pulumi.export("labelstudio_webhook_url", webhook.apply(lambda url: f"{url}/labelstudio"))
    return stack


def _secrets(stack: Stack, config: StackConfig) -> dict[str, Secret]:
    """The configured vendor's secrets, each with a version holding its value from the stack's
    secret config, so a function never starts against a secret with no version."""
    made = {}
    for secret_id in secrets_of(config.vendor):
        spec = SECRETS[secret_id]
        value = config.secrets.get(secret_id)
        if value is None:
            raise ValueError(
                f"vendor {config.vendor} needs the secret {secret_id}: "
                f"pulumi config set --secret framesift:{spec.config_key} <value>"
            )
        secret = stack.add(
            gcp.secretmanager.Secret(
                secret_id,
                secret_id=f"framesift-{secret_id}",
                replication={"auto": {}},
                labels=config.labels,
                opts=stack.opts(),
            )
        )
        version = stack.add(
            gcp.secretmanager.SecretVersion(
                f"{secret_id}-version",
                secret=secret.id,
                secret_data=value,
                opts=stack.opts(),
            )
        )
        made[secret_id] = Secret(secret, version)
    return made


def _build_account(stack: Stack, config: StackConfig) -> gcp.serviceaccount.Account:
    """The account the functions' builds run as: projects created since mid-2024 may build with
    a default account that lacks these roles."""
    account = stack.add(
        gcp.serviceaccount.Account(
            "builder",
            account_id="framesift-build",
            display_name="framesift: builds of the functions",
            opts=stack.opts(),
        )
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    for role in BUILD_ROLES:
        stack.add(
            gcp.projects.IAMMember(
                f"build-{role.rsplit('/', 1)[1]}",
                project=config.project,
                role=role,
                member=member,
                opts=stack.opts(),
            )
        )
    stack.add(
        gcp.storage.BucketIAMMember(
            "build-reads-sources",
            bucket=stack.buckets["sources"].name,
            role="roles/storage.objectViewer",
            member=member,
            opts=stack.opts(),
        )
    )
    return account


def _hold(stack: Stack, config: StackConfig, topic: str) -> gcp.pubsub.Subscription:
    """A pull subscription on a dead-letter topic, keeping its messages 7 days for operators
    and ``framesift replay-dead-letters``."""
    name = holding_subscription(topic)
    return stack.add(
        gcp.pubsub.Subscription(
            name,
            name=name,
            topic=stack.topics[topic].name,
            ack_deadline_seconds=60,
            message_retention_duration="604800s",
            expiration_policy={"ttl": ""},  # never expires for want of a reader
            labels=config.labels,
            opts=stack.opts(),
        )
    )


def _any_in_5_minutes(name: str, metric_filter: pulumi.Input[str]) -> Any:
    """An alert condition that fires on any count of the metric within 5 minutes."""
    return {
        "display_name": name,
        "condition_threshold": {
            "filter": metric_filter,
            "comparison": "COMPARISON_GT",
            "threshold_value": 0,
            "duration": "0s",
            "aggregations": [{"alignment_period": "300s", "per_series_aligner": "ALIGN_SUM"}],
        },
    }


def _alerts(stack: Stack, config: StackConfig) -> None:
    """An alert when anything is dead-lettered (by a function, or by Pub/Sub itself), and an
    optional billing budget."""
    metric = stack.add(
        gcp.logging.Metric(
            "dead-letters-metric",
            name="framesift/dead-letters",
            description="Messages a framesift function gave up on",
            filter=DEAD_LETTER_LOG_FILTER,
            metric_descriptor={"metric_kind": "DELTA", "value_type": "INT64"},
            opts=stack.opts(),
        )
    )
    channels: list[pulumi.Input[str]] = []
    if config.alert_email:
        email = gcp.monitoring.NotificationChannel(
            "alert-email",
            display_name="framesift alerts",
            type="email",
            labels={"email_address": config.alert_email},
            opts=stack.opts(),
        )
        channels.append(stack.add(email).id)
    stack.add(
        gcp.monitoring.AlertPolicy(
            "dead-letters-alert",
            display_name="framesift: messages dead-lettered",
            combiner="OR",
            conditions=[
                _any_in_5_minutes(
                    "a function gave up on a message",
                    metric.name.apply(
                        lambda name: (
                            f'metric.type="logging.googleapis.com/user/{name}"'
                            ' AND resource.type="cloud_run_revision"'
                        )
                    ),
                ),
                _any_in_5_minutes(
                    "Pub/Sub moved a message to a dead-letter topic",
                    'metric.type="pubsub.googleapis.com/subscription/dead_letter_message_count"'
                    ' AND resource.type="pubsub_subscription"',
                ),
            ],
            notification_channels=channels,
            opts=stack.opts(metric),
        )
    )
    if config.billing_account and config.monthly_budget_usd:
        stack.add(
            gcp.billing.Budget(
                "budget",
                billing_account=config.billing_account,
                display_name="framesift",
                budget_filter={"projects": [f"projects/{config.project}"]},
                amount={
                    "specified_amount": {
                        "currency_code": "USD",
                        "units": str(int(config.monthly_budget_usd)),
                    }
                },
                threshold_rules=[{"threshold_percent": share} for share in (0.5, 0.9, 1.0)],
                all_updates_rule={"monitoring_notification_channels": channels},
                opts=stack.opts(),
            )
        )


def _bucket_notifications(stack: Stack, config: StackConfig) -> None:
    """OBJECT_FINALIZE of the raw bucket (videos, and photos under the images prefix)."""
    agent = gcp.storage.get_project_service_account(project=config.project)
    publish = stack.add(
        gcp.pubsub.TopicIAMMember(
            "gcs-agent-publishes-raw-objects",
            opts=stack.opts(),
            topic=stack.topics[Topics.RAW_OBJECTS].name,
            role="roles/pubsub.publisher",
            member=f"serviceAccount:{agent.email_address}",
        )
    )
    prefixes = [config.raw_prefix]
    if config.raw_prefix and config.images_prefix:  # an empty raw prefix covers the images
        prefixes.append(config.images_prefix)
    for index, prefix in enumerate(prefixes):
        stack.add(
            gcp.storage.Notification(
                f"raw-finalize-{index}",
                bucket=stack.buckets["raw"].name,
                payload_format="JSON_API_V1",
                topic=stack.topics[Topics.RAW_OBJECTS].id,
                event_types=["OBJECT_FINALIZE"],
                object_name_prefix=prefix or None,
                opts=stack.opts(publish),
            )
        )


def _warehouse(stack: Stack, config: StackConfig) -> gcp.bigquery.Dataset:
    dataset = stack.add(
        gcp.bigquery.Dataset(
            "warehouse",
            opts=stack.opts(),
            dataset_id="framesift",
            location=config.region,
            labels=config.labels,
        )
    )
    for schema in ALL_TABLES:
        stack.add(
            gcp.bigquery.Table(
                f"table-{schema.name}",
                opts=stack.opts(),
                dataset_id=dataset.dataset_id,
                table_id=schema.name,
                deletion_protection=True,
                labels=config.labels,
                schema=json.dumps(
                    [
                        {
                            "name": c.name,
                            "type": c.type,
                            "mode": "REQUIRED" if c.required else "NULLABLE",
                            "description": c.description,
                        }
                        for c in schema.columns
                    ]
                ),
                time_partitioning=(
                    {"type": "DAY", "field": schema.partition_by} if schema.partition_by else None
                ),
                clusterings=list(schema.cluster_by) or None,
            )
        )
    return dataset


def _firestore(stack: Stack, config: StackConfig) -> None:
    database = stack.add(
        gcp.firestore.Database(
            "documents",
            opts=stack.opts(),
            name="(default)",
            location_id=config.region,
            type="FIRESTORE_NATIVE",
            delete_protection_state="DELETE_PROTECTION_ENABLED",
        )
    )
    # The queries are single-field (equality on one field, a range on updated_at), which
    # Firestore indexes by itself: no composite index is needed. Large opaque fields are taken
    # out of indexing instead, so writing them costs no index entries.
    for collection, field_name in (
        ("phash_buckets", "hashes"),
        ("annotations", "boxes"),
        ("dead_letters", "data"),
    ):
        stack.add(
            gcp.firestore.Field(
                f"no-index-{collection}-{field_name}",
                opts=stack.opts(),
                database=database.name,
                collection=collection,
                field=field_name,
                index_config={},
            )
        )


def _environment(config: StackConfig, stack: Stack) -> dict[str, pulumi.Input[str]]:
    return {
        "FRAMESIFT_BACKEND": "gcp",
        "FRAMESIFT_PROJECT": config.project,
        "FRAMESIFT_RAW_BUCKET": stack.buckets["raw"].name,
        "FRAMESIFT_FRAMES_BUCKET": stack.buckets["frames"].name,
        "FRAMESIFT_RAW_PREFIX": config.raw_prefix,
        "FRAMESIFT_IMAGES_PREFIX": config.images_prefix,
        "FRAMESIFT_SAMPLE_MODE": config.sample_mode,
        "FRAMESIFT_SAMPLE_EVERY_SECONDS": str(config.sample_every_seconds),
        "FRAMESIFT_DEDUP_THRESHOLD": str(config.dedup_threshold),
        "FRAMESIFT_DEDUP_SCOPE": config.dedup_scope,
        "FRAMESIFT_LABELING_VENDOR": config.vendor,
        "FRAMESIFT_LABELING_CLASSES": ",".join(config.classes),
        "FRAMESIFT_LABELSTUDIO_URL": config.labelstudio_url,
        "FRAMESIFT_LABELING_PRICE_PER_TASK": str(config.price_per_task),
        "FRAMESIFT_BIGQUERY_DATASET": "framesift",
        "FRAMESIFT_BIGQUERY_LOCATION": config.region,
        "FRAMESIFT_MAX_DELIVERY_ATTEMPTS": str(config.max_delivery_attempts),
        "FRAMESIFT_LABELING_BUDGET": str(config.labeling_budget),
    }


def _function(
    stack: Stack,
    config: StackConfig,
    spec: FunctionSpec,
    env: dict[str, pulumi.Input[str]],
    secrets: dict[str, Secret],
    dataset: gcp.bigquery.Dataset,
    invoker: gcp.serviceaccount.Account,
    pubsub_agent: str,
    builder: gcp.serviceaccount.Account,
) -> None:
    deployment = deployment_of(spec, config)
    account = stack.add(
        gcp.serviceaccount.Account(
            f"sa-{spec.name}",
            opts=stack.opts(),
            account_id=f"framesift-{spec.name}",
            display_name=f"framesift {spec.name} function",
        )
    )
    stack.accounts[spec.name] = account
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    reads = {
        secret_id: secrets[secret_id]
        for secret_id in VENDOR_SECRETS[config.vendor].get(spec.name, ())
    }
    grants = _grant(stack, spec, account, member, reads, dataset, config)
    stack.mounted[spec.name] = tuple(reads)
    stack.waits_for[spec.name] = (*grants, *(secret.version for secret in reads.values()))

    source = function_source(spec.name, config.vendor)
    archive = stack.add(
        gcp.storage.BucketObject(
            f"source-{spec.name}",
            opts=stack.opts(),
            bucket=stack.buckets["sources"].name,
            name=f"{spec.name}/{source.digest}.zip",
            source=source.archive,
        )
    )
    own_env = dict(env)
    if spec is LABELER:  # the vendors call back the webhook, deployed first
        own_env["FRAMESIFT_WEBHOOK_URL"] = stack.functions[WEBHOOK.name].url
        if config.model_uri:
            own_env["FRAMESIFT_MODEL_URI"] = config.model_uri
            own_env["FRAMESIFT_MODEL_THREADS"] = deployment.cpu
    if deployment.signs_urls:
        own_env["FRAMESIFT_SIGNER_SERVICE_ACCOUNT"] = account.email
    if spec is SAMPLER:  # ffmpeg would count the host's CPUs, not the function's
        own_env["FRAMESIFT_SAMPLER_CPUS"] = deployment.cpu
    function = stack.add(
        gcp.cloudfunctionsv2.Function(
            spec.name,
            name=f"framesift-{spec.name}",
            location=config.region,
            labels=config.labels,
            build_config={
                "runtime": "python311",
                "entry_point": spec.entry_point,
                "service_account": builder.name,
                "source": {
                    "storage_source": {
                        "bucket": stack.buckets["sources"].name,
                        "object": archive.name,
                    }
                },
            },
            service_config={
                "available_memory": deployment.memory,
                "available_cpu": deployment.cpu,
                "timeout_seconds": deployment.timeout_s,
                "max_instance_count": deployment.max_instances,
                "max_instance_request_concurrency": deployment.concurrency,
                "service_account_email": account.email,
                "ingress_settings": "ALLOW_ALL",
                "environment_variables": own_env,
                "secret_environment_variables": [
                    {
                        "key": SECRETS[secret_id].setting,
                        "project_id": config.project,
                        "secret": secret.secret.secret_id,
                        # The version this program made: never one that is not there yet.
                        "version": secret.version.version,
                    }
                    for secret_id, secret in reads.items()
                ],
            },
            # A function whose account cannot yet read a secret fails to start.
            opts=stack.opts(*stack.waits_for[spec.name]),
        )
    )
    stack.functions[spec.name] = function
    if not spec.subscribes and config.webhook_access == NO_INVOKER_CHECK:
        # pulumi-gcp's function has no such field: set it on the function's Cloud Run service.
        stack.add(
            command.local.Command(
                f"{spec.name}-no-invoker-check",
                create=pulumi.Output.concat(
                    "gcloud run services update ",
                    function.name,
                    f" --region={config.region} --project={config.project}",
                    " --no-invoker-iam-check --quiet",
                ),
                triggers=[function.url],
                opts=stack.opts(function),
            )
        )
        return
    stack.add(
        gcp.cloudrunv2.ServiceIamMember(
            f"invoke-{spec.name}",
            opts=stack.opts(),
            name=function.name,  # a 2nd gen function runs as the Cloud Run service of its name
            location=config.region,
            role="roles/run.invoker",
            # The webhook is called by the vendors, who authenticate with its shared secrets.
            member="allUsers"
            if not spec.subscribes
            else invoker.email.apply(lambda email: f"serviceAccount:{email}"),
        )
    )
    for topic in spec.subscribes:
        _push_subscription(stack, config, spec, topic, function, invoker, pubsub_agent)


def _grant(
    stack: Stack,
    spec: FunctionSpec,
    account: gcp.serviceaccount.Account,
    member: pulumi.Output[str],
    secrets: dict[str, Secret],
    dataset: gcp.bigquery.Dataset,
    config: StackConfig,
) -> list[pulumi.Resource]:
    """Bind the function's roles; returns the secret accessor grants, which it must wait for."""
    deployment = deployment_of(spec, config)
    for role in deployment.project_roles:
        stack.add(
            gcp.projects.IAMMember(
                f"{spec.name}-{role.rsplit('/', 1)[1]}",
                opts=stack.opts(),
                project=config.project,
                role=role,
                member=member,
            )
        )
    for key in deployment.reads:
        stack.add(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-reads-{key}",
                opts=stack.opts(),
                bucket=stack.buckets[key].name,
                role="roles/storage.objectViewer",
                member=member,
            )
        )
    if deployment.reads_photos and config.images_prefix:
        raw = stack.buckets["raw"].name
        stack.add(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-reads-photos",
                opts=stack.opts(),
                bucket=raw,
                role="roles/storage.objectViewer",
                member=member,
                condition={
                    "title": "photos only",
                    "description": "objects under the images prefix",
                    "expression": raw.apply(
                        lambda name: (
                            'resource.name.startsWith("projects/_/buckets/'
                            f'{name}/objects/{config.images_prefix}")'
                        )
                    ),
                },
            )
        )
    if spec is LABELER and config.model_uri.startswith("gs://"):
        # The model's one object, wherever its bucket is, and nothing else there.
        bucket, _, name = config.model_uri.removeprefix("gs://").partition("/")
        stack.add(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-reads-model",
                opts=stack.opts(),
                bucket=bucket,
                role="roles/storage.objectViewer",
                member=member,
                condition={
                    "title": "the model only",
                    "description": "the pre-labeling model's object",
                    "expression": f'resource.name == "projects/_/buckets/{bucket}/objects/{name}"',
                },
            )
        )
    for key in deployment.writes:  # objectUser: create, and overwrite on redelivery
        stack.add(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-writes-{key}",
                opts=stack.opts(),
                bucket=stack.buckets[key].name,
                role="roles/storage.objectUser",
                member=member,
            )
        )
    for topic in spec.publishes:
        stack.add(
            gcp.pubsub.TopicIAMMember(
                f"{spec.name}-publishes-{topic}",
                opts=stack.opts(),
                topic=stack.topics[topic].name,
                role="roles/pubsub.publisher",
                member=member,
            )
        )
    accessors: list[pulumi.Resource] = [
        stack.add(
            gcp.secretmanager.SecretIamMember(
                f"{spec.name}-reads-{secret_id}",
                opts=stack.opts(),
                secret_id=secret.secret.secret_id,
                role="roles/secretmanager.secretAccessor",
                member=member,
            )
        )
        for secret_id, secret in secrets.items()
    ]
    if deployment.signs_urls:  # signBlob for V4 signed URLs, with no key file
        stack.add(
            gcp.serviceaccount.IAMMember(
                f"{spec.name}-signs-as-itself",
                opts=stack.opts(),
                service_account_id=account.name,
                role="roles/iam.serviceAccountTokenCreator",
                member=member,
            )
        )
    if deployment.warehouse:
        stack.add(
            gcp.bigquery.DatasetIamMember(
                f"{spec.name}-edits-warehouse",
                opts=stack.opts(),
                dataset_id=dataset.dataset_id,
                role="roles/bigquery.dataEditor",
                member=member,
            )
        )
    return accessors


def _push_subscription(
    stack: Stack,
    config: StackConfig,
    spec: FunctionSpec,
    topic: str,
    function: gcp.cloudfunctionsv2.Function,
    invoker: gcp.serviceaccount.Account,
    pubsub_agent: str,
) -> None:
    name = spec.subscription(topic)
    dead_name = spec.dead_letter_topic(topic)
    dead = stack.add(
        gcp.pubsub.Topic(f"{name}-dead", name=dead_name, labels=config.labels, opts=stack.opts())
    )
    stack.topics[dead_name] = dead
    _hold(stack, config, dead_name)
    # Pub/Sub's own agent moves messages to the dead-letter topic.
    stack.add(
        gcp.pubsub.TopicIAMMember(
            f"{name}-dead-publisher",
            opts=stack.opts(),
            topic=dead.name,
            role="roles/pubsub.publisher",
            member=pubsub_agent,
        )
    )
    subscription = stack.add(
        gcp.pubsub.Subscription(
            name,
            opts=stack.opts(),
            name=name,
            topic=stack.topics[topic].name,
            ack_deadline_seconds=600,
            message_retention_duration="604800s",
            labels=config.labels,
            push_config={
                # functions-framework turns a push to this path into the CloudEvent.
                "push_endpoint": function.url.apply(
                    lambda url: f"{url}/projects/{config.project}/topics/{topic}"
                ),
                # The service's own URL: left out, the audience is the whole endpoint, path and
                # all, which the function's token check does not expect.
                "oidc_token": {"service_account_email": invoker.email, "audience": function.url},
            },
            retry_policy={"minimum_backoff": "10s", "maximum_backoff": "600s"},
            dead_letter_policy={
                "dead_letter_topic": dead.id,
                "max_delivery_attempts": pubsub_max_delivery_attempts(config.max_delivery_attempts),
            },
        )
    )
    stack.add(
        gcp.pubsub.SubscriptionIAMMember(
            f"{name}-dead-subscriber",
            opts=stack.opts(),
            subscription=subscription.name,
            role="roles/pubsub.subscriber",
            member=pubsub_agent,
        )
    )


def _scheduler(stack: Stack, config: StackConfig) -> None:
    _tick(
        stack,
        config,
        ("export-tick", "framesift-export"),
        config.export_schedule,
        Topics.EXPORT_REQUESTS,
        {"full": False},
    )
    if config.labeling_budget:
        # The budget's rounds, marked as such by their attribute; no round name in the body:
        # the labeler names each by the UTC day it was published.
        _tick(
            stack,
            config,
            ("labeling-round", "framesift-labeling-round"),
            config.labeling_round_schedule,
            Topics.LABELING_ROUNDS,
            {},
            {ROUND_MESSAGE: "scheduled"},
        )


def _tick(
    stack: Stack,
    config: StackConfig,
    names: tuple[str, str],
    schedule: str,
    topic: str,
    body: dict[str, Any],
    attributes: dict[str, str] | None = None,
) -> None:
    """A Cloud Scheduler job (its resource and job names) publishing ``body`` to ``topic`` on
    ``schedule``, in UTC."""
    resource, name = names
    stack.add(
        gcp.cloudscheduler.Job(
            resource,
            opts=stack.opts(),
            name=name,
            region=config.region,
            schedule=schedule,
            time_zone="Etc/UTC",
            pubsub_target=gcp.cloudscheduler.JobPubsubTargetArgs(
                topic_name=stack.topics[topic].id,
                data=base64.b64encode(json.dumps(body).encode()).decode(),
                attributes=attributes,
            ),
        )
    )
