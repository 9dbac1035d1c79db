"""The secrets the functions read: each a Secret Manager secret whose value the stack's secret
config holds (``pulumi config set --secret framesift:<key> ...``), and which function reads
which, by labeling vendor."""

from __future__ import annotations

from dataclasses import dataclass

from framesift.topology import LABELER, WEBHOOK


@dataclass(frozen=True)
class SecretSpec:
    setting: str  # the environment variable it becomes in a function
    config_key: str  # `pulumi config set --secret framesift:<config_key> ...`


# Secret id (``framesift-<id>`` in Secret Manager) -> how it is set and read.
SECRETS = {
    "scale-api-key": SecretSpec("FRAMESIFT_SCALE_API_KEY", "scaleApiKey"),
    "scale-callback-auth-key": SecretSpec(
        "FRAMESIFT_SCALE_CALLBACK_AUTH_KEY", "scaleCallbackAuthKey"
    ),
    "labelstudio-api-key": SecretSpec("FRAMESIFT_LABELSTUDIO_API_KEY", "labelstudioApiKey"),
    "labelstudio-webhook-secret": SecretSpec(
        "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET", "labelstudioWebhookSecret"
    ),
}

# The secrets each function reads, by labeling vendor: a function mounts only these, so a
# manifest-only deployment needs none.
VENDOR_SECRETS: dict[str, dict[str, tuple[str, ...]]] = {
    "manifest": {},
    "scale": {LABELER.name: ("scale-api-key",), WEBHOOK.name: ("scale-callback-auth-key",)},
    "labelstudio": {
        # The labeler sets the secret on the Label Studio webhook it keeps in step.
        LABELER.name: ("labelstudio-api-key", "labelstudio-webhook-secret"),
        WEBHOOK.name: ("labelstudio-webhook-secret",),
    },
}


def secrets_of(vendor: str) -> tuple[str, ...]:
    """The secrets a deployment with this labeling vendor needs, each once."""
    return tuple(dict.fromkeys(s for ids in VENDOR_SECRETS[vendor].values() for s in ids))
