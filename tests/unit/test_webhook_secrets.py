"""No Label Studio webhook without a secret (issue #29, point 4): a labeler that would register
one refuses to start and says how to set one; `framesift run` and `framesift serve` generate one,
kept in the workdir readable by its owner only, and say where. (The rotation, against a real
Label Studio: tests/integration/test_webhook_secret_rotation.py.)"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from framesift.bootstrap import build_adapters, vendor
from framesift.cli import app, pipeline
from framesift.config import Settings, Vendor
from framesift.errors import VendorRejected
from framesift.webhook_secrets import secret_file


@pytest.fixture
def labelstudio_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("FRAMESIFT_LABELING_VENDOR", "labelstudio")
    monkeypatch.setenv("FRAMESIFT_LABELSTUDIO_API_KEY", "token")
    monkeypatch.delenv("FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET", raising=False)
    (tmp_path / "in").mkdir()
    return tmp_path


def test_a_labeler_that_would_register_a_webhook_without_a_secret_refuses_to_start(tmp_path):
    settings = Settings(
        workdir=tmp_path,
        labeling_vendor=Vendor.LABELSTUDIO,
        labelstudio_api_key="token",
        webhook_url="https://hooks.example",
    )
    with pytest.raises(VendorRejected, match="set FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET"):
        vendor(build_adapters(settings), settings)
    without_webhook = settings.model_copy(update={"webhook_url": None})
    assert vendor(build_adapters(without_webhook), without_webhook).name == "labelstudio"


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})  # no line wrapped


def _kept(env) -> str:
    path = secret_file(Settings(workdir=env / "work"))
    assert path.stat().st_mode & 0o777 == 0o600
    return json.loads(path.read_text())["current"]


def test_run_generates_a_secret_kept_in_the_workdir_and_says_where(labelstudio_env):
    first = _invoke("run", "in", "--no-serve")
    again = _invoke("run", "in", "--no-serve")

    assert first.exit_code == 0, first.output
    assert "labelstudio-webhook-secret.json" in first.output
    assert "readable by you only" in first.output
    secret = _kept(labelstudio_env)
    assert again.exit_code == 0 and _kept(labelstudio_env) == secret  # kept, not replaced
    assert secret not in first.output + again.output


def test_serve_generates_a_secret_too(labelstudio_env, monkeypatch):
    monkeypatch.setattr(
        pipeline, "_serve_until_interrupted", lambda server, settings: server.stop()
    )
    monkeypatch.setenv("FRAMESIFT_SERVE_PORT", "0")

    served = _invoke("serve")

    assert served.exit_code == 0, served.output
    assert "labelstudio-webhook-secret.json" in served.output
    assert _kept(labelstudio_env)


def test_a_secret_set_in_the_environment_is_used_and_nothing_is_kept(labelstudio_env, monkeypatch):
    monkeypatch.setenv("FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET", "mine")

    result = _invoke("run", "in", "--no-serve")

    assert result.exit_code == 0, result.output
    assert not secret_file(Settings(workdir=labelstudio_env / "work")).exists()
