"""The roles of each function's service account: only what its stage touches."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from framesift.topology import LABELER, FunctionSpec
from framesift_infra.config import StackConfig
from framesift_infra.secretmanager import Secret
from framesift_infra.sizing import deployment_of
from framesift_infra.stack import Stack


def grant_roles(
    stack: Stack,
    spec: FunctionSpec,
    account: gcp.serviceaccount.Account,
    member: pulumi.Output[str],
    secrets: dict[str, Secret],
    dataset: gcp.bigquery.Dataset,
    config: StackConfig,
) -> list[pulumi.Resource]:
    """Bind the function's roles; returns every grant, which the function waits for (an
    instance started before its grants would fail its first events)."""
    deployment = deployment_of(spec, config)
    grants: list[pulumi.Resource] = []

    def grant(binding: pulumi.Resource) -> None:
        grants.append(stack.add(binding))

    for role in deployment.project_roles:
        grant(
            gcp.projects.IAMMember(
                f"{spec.name}-{role.rsplit('/', 1)[1]}",
                opts=stack.opts(),
                project=config.project,
                role=role,
                member=member,
            )
        )
    for key in deployment.reads:
        grant(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-reads-{key}",
                opts=stack.opts(),
                bucket=stack.buckets[key].name,
                role="roles/storage.objectViewer",
                member=member,
            )
        )
    if deployment.reads_photos:  # an empty images prefix: photos anywhere in the bucket
        grant(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-reads-photos",
                opts=stack.opts(),
                bucket=stack.buckets["raw"].name,
                role="roles/storage.objectViewer",
                member=member,
                condition=_objects_under(stack, "raw", config.images_prefix, "photos only"),
            )
        )
    if spec is LABELER and config.model_uri.startswith("gs://"):
        # The model's one object, wherever its bucket is, and nothing else there.
        bucket, _, name = config.model_uri.removeprefix("gs://").partition("/")
        grant(
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
        grant(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-writes-{key}",
                opts=stack.opts(),
                bucket=stack.buckets[key].name,
                role="roles/storage.objectUser",
                member=member,
            )
        )
    for key, prefix in deployment.writes_under:
        grant(
            gcp.storage.BucketIAMMember(
                f"{spec.name}-writes-{key}-{prefix.strip('/')}",
                opts=stack.opts(),
                bucket=stack.buckets[key].name,
                role="roles/storage.objectUser",
                member=member,
                condition=_objects_under(stack, key, prefix, f"{prefix} only"),
            )
        )
    for topic in spec.publishes:
        grant(
            gcp.pubsub.TopicIAMMember(
                f"{spec.name}-publishes-{topic}",
                opts=stack.opts(),
                topic=stack.topics[topic].name,
                role="roles/pubsub.publisher",
                member=member,
            )
        )
    for secret_id, secret in secrets.items():
        grant(
            gcp.secretmanager.SecretIamMember(
                f"{spec.name}-reads-{secret_id}",
                opts=stack.opts(),
                secret_id=secret.secret.secret_id,
                role="roles/secretmanager.secretAccessor",
                member=member,
            )
        )
    if deployment.signs_urls:  # signBlob for V4 signed URLs, with no key file
        grant(
            gcp.serviceaccount.IAMMember(
                f"{spec.name}-signs-as-itself",
                opts=stack.opts(),
                service_account_id=account.name,
                role="roles/iam.serviceAccountTokenCreator",
                member=member,
            )
        )
    if deployment.warehouse:
        grant(
            gcp.bigquery.DatasetIamMember(
                f"{spec.name}-edits-warehouse",
                opts=stack.opts(),
                dataset_id=dataset.dataset_id,
                role="roles/bigquery.dataEditor",
                member=member,
            )
        )
    return grants


def _objects_under(
    stack: Stack, key: str, prefix: str, title: str
) -> gcp.storage.BucketIAMMemberConditionArgsDict:
    """An IAM condition: only the objects of bucket ``key`` under ``prefix``."""
    return {
        "title": title,
        "description": f"objects under {prefix!r}",
        "expression": stack.buckets[key].name.apply(
            lambda name: f'resource.name.startsWith("projects/_/buckets/{name}/objects/{prefix}")'
        ),
    }
