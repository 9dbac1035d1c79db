"""The configured vendor's secrets in Secret Manager, each with the version the functions mount."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_gcp as gcp

from framesift_infra.config import StackConfig
from framesift_infra.secrets import SECRETS, secrets_of
from framesift_infra.stack import Stack


@dataclass(frozen=True)
class Secret:
    secret: gcp.secretmanager.Secret
    version: gcp.secretmanager.SecretVersion


def create_secrets(stack: Stack, config: StackConfig) -> dict[str, Secret]:
    """The configured vendor's secrets, each with a version holding its value from the stack's
    secret config, so a function never starts against a secret with no version. An optional
    one (a callback secret's previous value, set only while rotating) is made when set.

    Functions mount the version made here, by number: Cloud Functions reads a secret's value
    when an instance starts, so "latest" would leave running instances on the old value
    (https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions
    #SecretEnvVar: "any updates to the secret value is not reflected until new instances
    start"); a new value is a new version, so `pulumi up` deploys a new revision with it."""
    made = {}
    for secret_id in secrets_of(config.vendor):
        spec = SECRETS[secret_id]
        value = config.secrets.get(secret_id)
        if value is None and spec.optional:
            continue
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
