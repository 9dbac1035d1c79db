"""Each labeling vendor's facts, written once: its name, its own settings and which of them are
secrets (and which functions read each), how its callbacks reach the webhook and are
authenticated, and which adapter serves it.

The composition root builds the configured vendor from here (:func:`framesift.bootstrap.vendor`),
the webhook routes and authenticates callbacks by it (:mod:`framesift.stages.webhook`), the infra
creates and mounts the secrets it names (``framesift_infra.secrets``), and
docs/configuration.md lists it (``framesift_dev.configdoc``). Every deployed function imports
this module at cold start, so it names adapters and payload models by dotted path and imports
them only when built: a function loads only its own vendor's SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from framesift.config import Settings, Vendor
from framesift.topology import LABELER, WEBHOOK
from framesift.vendor_settings import LabelStudioSettings, ScaleSettings

if TYPE_CHECKING:
    from framesift.annotation_versions import TaskDeleted
    from framesift.documents import AnnotationRecord


@dataclass(frozen=True)
class Secret:
    """A secret setting and the functions that read it (a function mounts only its own)."""

    setting: str  # its field of Settings
    readers: tuple[str, ...]  # function names
    # A deployment without it is complete (the previous secret, set only while rotating).
    optional: bool = False

    @property
    def env(self) -> str:
        return f"FRAMESIFT_{self.setting.upper()}"

    @property
    def secret_id(self) -> str:
        """Its id in Secret Manager (``framesift-<id>``): the setting's name in kebab case."""
        return self.setting.replace("_", "-")

    @property
    def config_key(self) -> str:
        """Its Pulumi config key (``pulumi config set --secret framesift:<key>``): camel case."""
        first, *rest = self.setting.split("_")
        return first + "".join(word.capitalize() for word in rest)


@dataclass(frozen=True)
class Callback:
    """How the vendor's callbacks reach the webhook (``POST {webhook_url}/{vendor}``) and prove
    they are the vendor's: a shared secret in a header, compared in constant time."""

    header: str  # the header carrying the secret (its name, not the secret)
    secret: Secret  # the setting holding it
    # The secret before the last rotation, accepted too while the vendor changes over.
    previous: Secret
    payload: str  # "module:Class", a pydantic model of the body whose records() are stored

    def payload_model(self) -> Any:
        """The payload's model, imported: the webhook imports it when it is built, so a deployed
        webhook's archive (which ships what an instance loads before its first request) holds
        it."""
        return load(self.payload)

    def records(self, body: Any) -> list[AnnotationRecord | TaskDeleted]:
        """The records of a callback's parsed JSON body (a deleted task's, for Label Studio's
        TASKS_DELETED). Raises ValidationError (not the vendor's shape) or ValueError."""
        records: list[AnnotationRecord | TaskDeleted] = (
            self.payload_model().model_validate(body).records()
        )
        return records


@dataclass(frozen=True)
class VendorSpec:
    name: Vendor
    adapter: str  # "module:Class", the LabelingVendor, built as Class(*ports, config)
    config: str  # "module:Class", its frozen config (each field named as in Settings)
    ports: tuple[str, ...] = ()  # the ports it takes, by their name on bootstrap.Adapters
    settings: type[BaseModel] | None = None  # its own settings' group
    api_secrets: tuple[Secret, ...] = ()  # what its client authenticates with
    callback: Callback | None = None
    # Where in the frames bucket it writes (the manifests), if anywhere: the labeler's account
    # may write there and nowhere else.
    writes_frames_under: str = ""

    @property
    def secrets(self) -> tuple[Secret, ...]:
        """Every secret of the vendor: its client's, then its callbacks' (current, previous)."""
        if self.callback is None:
            return self.api_secrets
        return (*self.api_secrets, self.callback.secret, self.callback.previous)

    @property
    def route(self) -> str:
        """The webhook's path for this vendor's callbacks."""
        return f"/{self.name}"

    def callback_url(self, webhook_url: str) -> str:
        return webhook_url.rstrip("/") + self.route


SCALE_CALLBACK = Callback(
    header="scale-callback-auth",
    secret=Secret("scale_callback_auth_key", readers=(WEBHOOK.name,)),
    previous=Secret("scale_callback_auth_key_previous", readers=(WEBHOOK.name,), optional=True),
    payload="framesift.vendors.scale:ScaleCallback",
)
LABELSTUDIO_CALLBACK = Callback(
    header="X-Framesift-Secret",
    # The labeler reads it too, to set it on the Label Studio webhook it keeps in step.
    secret=Secret("labelstudio_webhook_secret", readers=(LABELER.name, WEBHOOK.name)),
    previous=Secret("labelstudio_webhook_secret_previous", readers=(WEBHOOK.name,), optional=True),
    payload="framesift.vendors.labelstudio_callbacks:LabelStudioWebhook",
)

MANIFEST = VendorSpec(
    Vendor.MANIFEST,
    adapter="framesift.vendors.manifest:ManifestVendor",
    config="framesift.vendors.manifest:ManifestConfig",
    ports=("blobs",),
    writes_frames_under="manifests/",
)
SCALE = VendorSpec(
    Vendor.SCALE,
    adapter="framesift.vendors.scale:ScaleVendor",
    config="framesift.vendors.scale:ScaleConfig",
    settings=ScaleSettings,
    api_secrets=(Secret("scale_api_key", readers=(LABELER.name,)),),
    callback=SCALE_CALLBACK,
)
LABELSTUDIO = VendorSpec(
    Vendor.LABELSTUDIO,
    adapter="framesift.vendors.labelstudio:LabelStudioVendor",
    config="framesift.vendors.labelstudio:LabelStudioConfig",
    ports=("documents",),
    settings=LabelStudioSettings,
    api_secrets=(Secret("labelstudio_api_key", readers=(LABELER.name,)),),
    callback=LABELSTUDIO_CALLBACK,
)

VENDORS: Mapping[Vendor, VendorSpec] = {spec.name: spec for spec in (MANIFEST, SCALE, LABELSTUDIO)}


def load(path: str) -> Any:
    """The object at ``module:name``, importing its module."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def callback_secrets(settings: Settings) -> dict[str, tuple[SecretStr, ...]]:
    """The callback secrets each calling-back vendor's callbacks may carry, by vendor name: the
    current one, then the previous one while a rotation has it (none: not configured)."""
    return {
        spec.name: tuple(
            secret
            for setting in (spec.callback.secret, spec.callback.previous)
            # An empty secret is none: compare_digest would take a missing header for it.
            if (secret := getattr(settings, setting.setting)) is not None
            and secret.get_secret_value()
        )
        for spec in VENDORS.values()
        if spec.callback is not None
    }
