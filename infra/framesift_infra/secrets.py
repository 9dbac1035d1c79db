"""The secrets the functions read: each a Secret Manager secret whose value the stack's secret
config holds (``pulumi config set --secret framesift:<key> ...``), and which function reads
which, by labeling vendor. Which settings are secrets, and who reads each, is the vendor
registry's (:mod:`framesift.vendors.registry`), which also names each secret's id and key."""

from __future__ import annotations

from dataclasses import dataclass

from framesift.vendors.registry import VENDORS


@dataclass(frozen=True)
class SecretSpec:
    setting: str  # the environment variable it becomes in a function
    config_key: str  # `pulumi config set --secret framesift:<config_key> ...`
    optional: bool  # made and mounted only when set (the previous secret, while rotating)


# Secret id -> how it is set and read.
SECRETS = {
    secret.secret_id: SecretSpec(secret.env, secret.config_key, secret.optional)
    for spec in VENDORS.values()
    for secret in spec.secrets
}

# The secrets each function reads, by labeling vendor: a function mounts only these, so a
# manifest-only deployment needs none.
VENDOR_SECRETS: dict[str, dict[str, tuple[str, ...]]] = {
    spec.name: {
        function: tuple(s.secret_id for s in spec.secrets if function in s.readers)
        for function in dict.fromkeys(f for s in spec.secrets for f in s.readers)
    }
    for spec in VENDORS.values()
}


def secrets_of(vendor: str) -> tuple[str, ...]:
    """The secrets a deployment with this labeling vendor needs, each once."""
    return tuple(dict.fromkeys(s for ids in VENDOR_SECRETS[vendor].values() for s in ids))
