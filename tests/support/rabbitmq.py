"""A private RabbitMQ node for the tests: Debian's rabbitmq-server, run as this user from its
own folder (node name, AMQP, distribution and epmd ports of its own, Mnesia, logs and Erlang
cookie inside the folder, no plugins), stopped with everything it started."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framesift_dev.services import free_port, kill_group

# The scripts themselves: /usr/sbin's wrappers switch to the rabbitmq user, who cannot write
# the test's folder.
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
INSTALL_HINT = (
    "rabbitmq-server is not installed: sudo apt-get install -y rabbitmq-server "
    "(the RabbitMQ tests start a private node of it)"
)


def installed() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists()


@contextmanager
def rabbitmq_node(folder: Path, timeout: float = 120.0) -> Iterator[str]:
    """A node started in ``folder``; yields its AMQP URL (the default guest user, loopback)."""
    import pika

    port, epmd = free_port(), free_port()
    (folder / "enabled_plugins").write_text("[].")
    env = {
        **os.environ,
        "HOME": str(folder),  # the Erlang cookie
        "RABBITMQ_NODENAME": f"framesift-{uuid.uuid4().hex[:8]}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "ERL_EPMD_PORT": str(epmd),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(folder / "pid"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
    }
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [str(RABBITMQ_BIN / "rabbitmq-server")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                pika.BlockingConnection(pika.URLParameters(url)).close()
                break
            except pika.exceptions.AMQPConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"rabbitmq-server did not start: {(folder / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        kill_group(server.pid)
        log.close()
        # The node started its own epmd (its port is the node's alone): stop it too.
        epmd_binary = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        subprocess.run(
            [epmd_binary, "-kill"],
            env={**env, "ERL_EPMD_PORT": str(epmd)},
            check=False,
            capture_output=True,
        )
