"""The previous callback secret, deployed only while a rotation has it (issue #29, point 3):
made in Secret Manager and mounted in the webhook, by version, when set; absent otherwise."""

from __future__ import annotations

from tests.support.infra import SECRET_VALUES, deploy_under_mocks, of_type


def _mounted(recorder) -> dict[str, dict[str, str]]:
    functions = of_type(recorder, "gcp:cloudfunctionsv2/function:Function")
    return {
        name: {
            s["key"]: s["secret"]
            for s in f["serviceConfig"].get("secretEnvironmentVariables") or []
        }
        for name, f in functions.items()
    }


def test_the_previous_secret_is_mounted_in_the_webhook_only_while_set():
    rotating = {**SECRET_VALUES, "labelstudio-webhook-secret-previous": "the-old-secret"}
    recorder, _ = deploy_under_mocks(vendor="labelstudio", secrets=rotating)
    mounted = _mounted(recorder)
    webhook = next(keys for name, keys in mounted.items() if "webhook" in name)
    labeler = next(keys for name, keys in mounted.items() if "labeler" in name)
    assert webhook["FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET_PREVIOUS"] == (
        "framesift-labelstudio-webhook-secret-previous"
    )
    assert "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET_PREVIOUS" not in labeler
    versions = of_type(recorder, "gcp:secretmanager/secretVersion:SecretVersion")
    assert "the-old-secret" in {v["secretData"]["value"] for v in versions.values()}

    recorder, _ = deploy_under_mocks(vendor="labelstudio", secrets=SECRET_VALUES)
    webhook = next(keys for name, keys in _mounted(recorder).items() if "webhook" in name)
    assert "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET_PREVIOUS" not in webhook
    assert "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET" in webhook
