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
``status`` work from another shell. The processes are run by :mod:`framesift_dev.services`, the
emulators' command lines are :mod:`framesift_dev.emulators`, and what the stack creates in them
is :mod:`framesift_dev.provisioning`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from framesift.config import Settings
from framesift.topology import FUNCTIONS, WEBHOOK, FunctionSpec, pubsub_max_delivery_attempts
from framesift_dev import emulators, provisioning
from framesift_dev.provisioning import BIGQUERY_DATASET, FRAMES_BUCKET, PROJECT, RAW_BUCKET
from framesift_dev.services import (
    REPO_ROOT,
    DevStackError,
    ServiceState,
    alive,
    environ,
    free_port,
    kill_group,
    launch,
    tcp_open,
    wait_until_ready,
)

# What the CLI, the tests and the benchmarks import from here.
__all__ = [
    "BIGQUERY_DATASET",
    "FRAMES_BUCKET",
    "RAW_BUCKET",
    "DevStack",
    "DevStackError",
    "StackState",
    "environ",
    "free_port",
]

DEFAULT_STATE_DIR = REPO_ROOT / ".framesift" / "devstack"


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
            provisioning.provision(self.project, self._state.env)
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
        process = launch(service, self.state_dir)
        service.pid = process.pid
        self._state.save(self.state_file)
        wait_until_ready(process, service, timeout)

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
        self._spawn("pubsub", emulators.pubsub_command(pubsub), pubsub, timeout)
        self._spawn(
            "firestore",
            emulators.firestore_command(firestore),
            firestore,
            timeout,
            ready_url=f"http://127.0.0.1:{firestore}/",
        )
        self._spawn(
            "gcs",
            emulators.fake_gcs_command(gcs, self.project, RAW_BUCKET),
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
            emulators.bigquery_command(
                bigquery, bigquery_grpc, self.project, self.state_dir / "bigquery"
            ),
            bigquery,
            timeout,
            ready_url=f"http://127.0.0.1:{bigquery}/bigquery/v2/projects/{self.project}/datasets",
        )

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
        if subscribe:
            provisioning.subscribe(self.project, self._state.env, instance, port, attempts)
        self._state.save(self.state_file)
        return port

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
        kill_group(service.pid, grace=0)
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
            if kill_group(service.pid):
                stopped.append(service.name)
        self.state_file.unlink(missing_ok=True)
        self.state = None
        return stopped

    def status(self) -> dict[str, bool]:
        """Each service of the recorded stack and whether it is up (process alive, port open)."""
        if not self.state_file.exists():
            return {}
        state = StackState.load(self.state_file)
        return {s.name: alive(s.pid) and tcp_open(s.port) for s in state.services}
