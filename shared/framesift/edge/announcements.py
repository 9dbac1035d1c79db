"""Files announced on a RabbitMQ queue (cameras that say when a recording is complete), for the
edge agent: each announcement is ``{"path": "/abs/path/of/video.mp4"}``.

An announcement is acknowledged only once the journal has committed the file it names: from
then on the journal, not the queue, is what the agent resumes from, so a crash between the two
redelivers an announcement the journal already has (noted again, no change). One that cannot
name a file (not JSON, no ``path``, a path that does not exist) is rejected without requeue,
so RabbitMQ moves it to the queue's dead-letter exchange (``{queue}.dead-letter``, declared
here with its queue of the same name) with its ``x-death`` record, and the journal keeps why
(``framesift edge status``).

The queue is read with ``basic_get`` on a connection opened for each pass and closed before
the videos are processed, so a video that takes longer than the heartbeat never costs the
connection (pika's blocking connection cannot answer heartbeats while the agent works).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from framesift.edge.failpoints import failpoint
from framesift.logs import get_logger

if TYPE_CHECKING:
    import pika.adapters.blocking_connection

log = get_logger(__name__)

# The most of an announcement's body the journal keeps beside why it was rejected.
_KEPT_BODY = 500


def dead_letter_name(queue: str) -> str:
    return f"{queue}.dead-letter"


def announced_path(body: bytes) -> Path | str:
    """The file an announcement names, or why it names none."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
        return 'not {"path": "..."}'
    path = Path(payload["path"])
    if not path.is_file():
        return f"no such file: {path}"
    return path


class Announcements:
    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue

    def _channel(
        self,
    ) -> tuple[pika.BlockingConnection, pika.adapters.blocking_connection.BlockingChannel]:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        dead = dead_letter_name(self.queue)
        channel.exchange_declare(dead, exchange_type="fanout", durable=True)
        channel.queue_declare(dead, durable=True)
        channel.queue_bind(dead, dead)
        channel.queue_declare(self.queue, durable=True, arguments={"x-dead-letter-exchange": dead})
        return connection, channel

    def take(
        self, journal_file: Callable[[Path], object], reject: Callable[[str, str], None]
    ) -> int:
        """Every announcement waiting: each file named given to ``journal_file`` (which
        commits it to the journal) before it is acknowledged, each that names none given to
        ``reject`` (its body, why) and dead-lettered. Returns how many were taken."""
        connection, channel = self._channel()
        taken = 0
        try:
            while True:
                method, _, body = channel.basic_get(self.queue)
                if method is None:
                    return taken
                taken += 1
                path = announced_path(body)
                if isinstance(path, str):
                    text = body.decode(errors="replace")[:_KEPT_BODY]
                    log.error(
                        "announcement rejected to %s: %s",
                        dead_letter_name(self.queue),
                        path,
                        extra={"fields": {"body": text}},
                    )
                    reject(text, path)
                    channel.basic_reject(method.delivery_tag, requeue=False)
                    continue
                journal_file(path)
                failpoint("announced")
                channel.basic_ack(method.delivery_tag)
        finally:
            connection.close()
