"""Label Studio's webhook secret on this machine, and its rotation without a refused call.

Label Studio posts each webhook once and never retries, so a call it makes with a secret the
webhook does not accept is lost. Hence:

- **none set**: a labeler that would register the webhook refuses to start
  (:class:`~framesift.vendors.labelstudio.LabelStudioVendor`); ``framesift run`` and
  ``serve`` generate one and keep it in ``{workdir}/secrets/labelstudio-webhook-secret.json``
  (mode 0600), used while ``FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET`` is unset;
- **rotating** (:func:`rotate`), in the order that loses nothing: the webhook accepts the new
  secret as well as the old one first (kept here and read by ``framesift serve`` at each call;
  deployed, the operator sets ``..._PREVIOUS`` and deploys first), which is checked by a call
  to it; then Label Studio's webhook header is set to the new secret through its API; the old
  one is retired afterwards (:func:`retire`), once Label Studio sends only the new one.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from framesift.config import Backend, Settings, section
from framesift.errors import VendorRejected
from framesift.ports import DocumentStore
from framesift.vendors.registry import LABELSTUDIO, LABELSTUDIO_CALLBACK

CURRENT = LABELSTUDIO_CALLBACK.secret
PREVIOUS = LABELSTUDIO_CALLBACK.previous
HOW_TO_SET = (
    f"set {CURRENT.env} (deployed: pulumi config set --secret framesift:{CURRENT.config_key} "
    f'"$(openssl rand -base64 32)"; locally `framesift run` and `framesift serve` generate one)'
)


class RotationRefused(VendorRejected):
    """A rotation step that would make Label Studio send a secret the webhook refuses."""


def secret_file(settings: Settings) -> Path:
    return settings.workdir / "secrets" / f"{CURRENT.secret_id}.json"


def _read(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def _write(path: Path, kept: dict[str, str]) -> None:
    """Write ``kept`` readable by this user only (0600), never world-readable in between."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(kept, out)
    partial.replace(path)


def with_local_secrets(settings: Settings) -> Settings:
    """``settings`` with the secrets kept in the workdir, when none is set otherwise."""
    if getattr(settings, CURRENT.setting) is not None:
        return settings
    kept = _read(secret_file(settings))
    return settings.model_copy(
        update={
            setting.setting: SecretStr(kept[key]) if kept.get(key) else None
            for setting, key in ((CURRENT, "current"), (PREVIOUS, "previous"))
        }
    )


def ensure_local_secret(settings: Settings) -> tuple[Settings, Path | None]:
    """``settings`` with a webhook secret: the one set, the one kept in the workdir, or one
    generated and kept there; and the file it is kept in (None: set in the environment)."""
    if getattr(settings, CURRENT.setting) is not None:
        return settings, None
    path = secret_file(settings)
    if not _read(path).get("current"):
        _write(path, {"current": secrets.token_urlsafe(32)})
    return with_local_secrets(settings), path


@dataclass(frozen=True)
class Rotation:
    webhook: str  # the webhook URL checked
    kept_in: Path | None  # where the new secret is kept (None: the deployment's settings)


def rotate(settings: Settings, documents: DocumentStore) -> Rotation:
    """Rotate Label Studio's webhook secret: locally (secrets kept in the workdir) to a new one
    generated here; deployed, to the one the webhook was deployed with (``..._PREVIOUS`` set
    to the old one). Raises RotationRefused before changing Label Studio when the webhook
    does not accept the new secret."""
    from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor

    if not settings.webhook_url:
        raise RotationRefused("FRAMESIFT_WEBHOOK_URL is not set: there is no webhook to rotate")
    webhook = LABELSTUDIO.callback_url(settings.webhook_url)
    local = settings.backend is Backend.EMBEDDED and getattr(settings, CURRENT.setting) is None
    kept_in = secret_file(settings) if local else None
    if kept_in is not None:
        old = _read(kept_in).get("current")
        if old:
            _accepted(webhook, old)  # the server is up, and reads the workdir's secrets
        _write(
            kept_in, {"current": secrets.token_urlsafe(32), **({"previous": old} if old else {})}
        )
    rotated = with_local_secrets(settings)
    new = getattr(rotated, CURRENT.setting)
    if new is None:
        raise RotationRefused(f"no webhook secret to rotate to: {HOW_TO_SET}")
    _accepted(webhook, new.get_secret_value())
    LabelStudioVendor(documents, section(LabelStudioConfig, rotated)).project_id()
    return Rotation(webhook=webhook, kept_in=kept_in)


def retire(settings: Settings) -> Path:
    """Forget the previous secret kept in the workdir (deployed: remove ``..._PREVIOUS`` from
    the stack's config and deploy)."""
    path = secret_file(settings)
    kept = _read(path)
    if not kept.get("previous"):
        raise RotationRefused(f"no previous secret kept in {path}")
    _write(path, {"current": kept["current"]})
    return path


def _accepted(webhook: str, secret: str) -> None:
    """Check the webhook accepts ``secret``: a call with it and an empty body is refused for
    the body (422), not for the secret (401)."""
    import httpx  # the command's alone: a labeler reads this module for HOW_TO_SET

    try:
        answer = httpx.post(webhook, content=b"{}", headers={LABELSTUDIO_CALLBACK.header: secret})
    except httpx.HTTPError as exc:
        raise RotationRefused(f"the webhook {webhook} cannot be reached: {exc}") from exc
    if answer.status_code in (401, 503):
        raise RotationRefused(
            f"the webhook {webhook} does not accept the new secret yet (HTTP "
            f"{answer.status_code}): deploy it with {CURRENT.env} set to the new secret and "
            f"{PREVIOUS.env} to the old one first (locally, run `framesift serve`)"
        )
