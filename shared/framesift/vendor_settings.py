"""Each vendor's own settings, read with the others from ``FRAMESIFT_*`` variables
(:class:`framesift.config.Settings` is made of these groups and the general settings). The
vendor registry (:mod:`framesift.vendors.registry`) names which of them are secrets and how
callbacks are authenticated; docs/configuration.md lists them by vendor."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

# Scale's client appends /task/... to the instance URL it is given: the version is part of it
# (the client's own default is https://api.scale.com/v1).
SCALE_API_VERSION_PATH = "/v1"


class ScaleSettings(BaseModel):
    scale_api_key: SecretStr | None = Field(default=None, description="Scale's API key (secret).")
    scale_api_url: str | None = Field(
        default=None,
        description="Another instance of Scale's API (the tests' local fake), up to its "
        "version: `http://127.0.0.1:9000/v1`; `/v1` is added to a URL that does not end in it "
        "(without it every request would be a 404).",
    )
    scale_project: str = Field(default="framesift", description="The Scale project of the tasks.")
    scale_instruction: str = Field(
        default="Draw a tight box around every object of the listed classes.",
        description="The instruction on each Scale task.",
    )
    scale_min_width: int = Field(default=8, ge=0, description="Scale boxes' minimum width, px.")
    scale_min_height: int = Field(default=8, ge=0, description="Scale boxes' minimum height, px.")
    scale_callback_auth_key: SecretStr | None = Field(
        default=None,
        description="Scale's callback auth key, which Scale sends back with every callback "
        "(secret).",
    )
    scale_callback_auth_key_previous: SecretStr | None = Field(
        default=None,
        description="The callback auth key before the last rotation, still accepted until it "
        "is removed, so callbacks sent with it while Scale changes over are stored (secret; "
        "docs/operations.md, Rotating the webhook secret).",
    )

    @field_validator("scale_api_url")
    @classmethod
    def _up_to_the_api_version(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.rstrip("/")
        return url if url.endswith(SCALE_API_VERSION_PATH) else url + SCALE_API_VERSION_PATH


class LabelStudioSettings(BaseModel):
    labelstudio_url: str = Field(
        default="http://127.0.0.1:8080", description="The Label Studio server."
    )
    labelstudio_api_key: SecretStr | None = Field(
        default=None, description="Label Studio's API token (secret)."
    )
    labelstudio_project: str = Field(
        default="framesift", description="The Label Studio project's title."
    )
    labelstudio_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Sent by Label Studio with each webhook call, in the header framesift "
        "configures on its webhook (secret). Unset, `framesift run` and `serve` generate one "
        "in the workdir; a labeler registering a webhook refuses to start without it.",
    )
    labelstudio_webhook_secret_previous: SecretStr | None = Field(
        default=None,
        description="The webhook secret before the last rotation, still accepted until it is "
        "removed, so no call Label Studio makes while its header changes is refused (secret; "
        "docs/operations.md, Rotating the webhook secret).",
    )
