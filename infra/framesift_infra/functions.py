"""The five functions: each one's service account, source archive, Cloud Function (2nd gen) with
its environment and secrets, who may invoke it and its push subscriptions; and the account
their builds run as."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_gcp as gcp

from framesift.topology import LABELER, SAMPLER, WEBHOOK, FunctionSpec
from framesift_infra.config import StackConfig
from framesift_infra.iam import grant_roles
from framesift_infra.messaging import PushInvoker, push_subscription
from framesift_infra.packaging import function_source
from framesift_infra.secretmanager import Secret
from framesift_infra.secrets import SECRETS, VENDOR_SECRETS
from framesift_infra.sizing import deployment_of
from framesift_infra.stack import Stack, service_uri

# StackConfig.webhook_access: disable Cloud Run's invoker check instead of binding allUsers.
NO_INVOKER_CHECK = "noInvokerCheck"
WEBHOOK_ACCESS = ("allUsers", NO_INVOKER_CHECK)
# What a custom build account needs for the functions' builds: writing the build's logs and
# its image to Artifact Registry, and reading the source archive (objectViewer on the sources
# bucket alone): https://cloud.google.com/functions/docs/securing/build-custom-sa (not
# roles/cloudbuild.builds.builder, which holds far more).
BUILD_ROLES = ("roles/logging.logWriter", "roles/artifactregistry.writer")


@dataclass(frozen=True)
class Builder:
    """The account the functions' builds run as, and its grants, which every function's first
    build needs in place."""

    account: gcp.serviceaccount.Account
    grants: tuple[pulumi.Resource, ...]


def build_account(stack: Stack, config: StackConfig, project_number: str) -> Builder:
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
    grants: list[pulumi.Resource] = [
        stack.add(
            gcp.projects.IAMMember(
                f"build-{role.rsplit('/', 1)[1]}",
                project=config.project,
                role=role,
                member=member,
                opts=stack.opts(),
            )
        )
        for role in BUILD_ROLES
    ]
    grants.append(
        stack.add(
            gcp.storage.BucketIAMMember(
                "build-reads-sources",
                bucket=stack.buckets["sources"].name,
                role="roles/storage.objectViewer",
                member=member,
                opts=stack.opts(),
            )
        )
    )
    # The build fetches the archive from Cloud Functions' own copy of it, in a bucket Google
    # creates at the first deploy (so no bucket binding can exist before it): a build without
    # this fails "Access to bucket gcf-v2-sources-<number>-<region> denied. You must grant
    # Storage Object Viewer permission to <build account>" (hashicorp/terraform-provider-google
    # #20571; https://cloud.google.com/functions/docs/building). Granted on the project, limited
    # by a condition to that bucket's objects: not every bucket of the project.
    copies = f"projects/_/buckets/{google_sources_bucket(project_number, config.region)}/objects/"
    grants.append(
        stack.add(
            gcp.projects.IAMMember(
                "build-reads-googles-copy",
                project=config.project,
                role="roles/storage.objectViewer",
                member=member,
                condition={
                    "title": "function sources only",
                    "description": "Cloud Functions' copy of each source archive",
                    "expression": f'resource.name.startsWith("{copies}")',
                },
                opts=stack.opts(),
            )
        )
    )
    return Builder(account, tuple(grants))


def google_sources_bucket(project_number: str, region: str) -> str:
    """The bucket a 2nd gen function's build fetches its source from, Google's copy of the
    archive (default encryption): https://cloud.google.com/functions/docs/building."""
    return f"gcf-v2-sources-{project_number}-{region}"


def ingress(spec: FunctionSpec) -> str:
    """Only Pub/Sub pushes to a subscribing function: internal ingress lets in Pub/Sub of the
    same project or VPC Service Controls perimeter and nothing from the internet
    (https://cloud.google.com/run/docs/securing/ingress#settings). The webhook is the vendors'."""
    return "ALLOW_INTERNAL_ONLY" if spec.subscribes else "ALLOW_ALL"


def environment(config: StackConfig, stack: Stack) -> dict[str, pulumi.Input[str]]:
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
        **(
            {
                "FRAMESIFT_DEDUP_WINDOW_HOURS": str(config.dedup_window_hours),
                "FRAMESIFT_DEDUP_TAIL_TABLES": str(config.dedup_tail_tables),
            }
            if config.dedup_window_hours
            else {}
        ),
    }


def deploy_function(
    stack: Stack,
    config: StackConfig,
    spec: FunctionSpec,
    env: dict[str, pulumi.Input[str]],
    secrets: dict[str, Secret],
    dataset: gcp.bigquery.Dataset,
    invoker: PushInvoker,
    pubsub_agent: str,
    builder: Builder,
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
        if secret_id in secrets  # an optional one only when set
    }
    grants = grant_roles(stack, spec, account, member, reads, dataset, config)
    stack.mounted[spec.name] = tuple(reads)

    source = function_source(spec.name, config.vendor, bool(config.model_uri))
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
        own_env["FRAMESIFT_WEBHOOK_URL"] = service_uri(stack.functions[WEBHOOK.name])
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
                "service_account": builder.account.name,
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
                "ingress_settings": ingress(spec),
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
            # On a first deploy: a build before its account's grants fails, and so does an
            # instance started before its own grants or its secrets' versions.
            opts=stack.opts(
                *builder.grants, *grants, *(secret.version for secret in reads.values())
            ),
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
    invoke = stack.add(
        gcp.cloudrunv2.ServiceIamMember(
            f"invoke-{spec.name}",
            opts=stack.opts(),
            name=function.name,  # a 2nd gen function runs as the Cloud Run service of its name
            location=config.region,
            role="roles/run.invoker",
            # The webhook is called by the vendors, who authenticate with its shared secrets.
            member="allUsers"
            if not spec.subscribes
            else invoker.account.email.apply(lambda email: f"serviceAccount:{email}"),
        )
    )
    for topic in spec.subscribes:
        push_subscription(stack, config, spec, topic, function, invoker, invoke, pubsub_agent)
