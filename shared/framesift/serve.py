"""Frames and the webhook over HTTP from this machine, for a vendor that is not on Google Cloud
with you: the embedded pipeline's answer to signed URLs and a deployed webhook.

``framesift run --vendor labelstudio`` (or ``scale``) starts it before the run and keeps it up
afterwards, and ``framesift serve`` starts it on its own (annotators work for days). Routes:

- ``GET /frames/{bucket}/{object}``: a frame (or an uploaded photo) from the embedded blob
  store, the frames and raw buckets only; 404 otherwise. Vendors get these URLs as the image
  to label (``image_base_url``, which this server sets to itself unless it is given: a tunnel
  or proxy's public address, when the vendor runs elsewhere);
- ``POST /webhook/scale`` and ``/webhook/labelstudio``: the webhook function's receiver, same
  checks and answers, storing into the embedded document store (``webhook_url``).

It listens on loopback by default: a browser or a Label Studio on this machine reaches it.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from framesift import bootstrap
from framesift.config import Settings
from framesift.errors import NotFound
from framesift.logs import get_logger
from framesift.stages.webhook import CallbackReceiver
from framesift.vendors.registry import callback_secrets
from framesift.webhook_secrets import with_local_secrets

log = get_logger(__name__)
FRAMES_ROUTE = "/frames"
WEBHOOK_ROUTE = "/webhook"


class LocalServer:
    def __init__(
        self, settings: Settings, adapters: bootstrap.Adapters, host: str, port: int
    ) -> None:
        self._adapters = adapters
        self._buckets = {settings.frames_bucket, settings.raw_bucket}
        self._server = make_server(host, port, self._app, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        # The receiver reads the settings the vendor is given: this server as its webhook.
        self._settings = self.settings_for(settings)
        self._receivers: dict[tuple[Any, ...], CallbackReceiver] = {}
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def settings_for(self, settings: Settings) -> Settings:
        """``settings`` pointing vendors at this server, where they name no other address."""
        return settings.model_copy(
            update={
                "image_base_url": settings.image_base_url or self.url + FRAMES_ROUTE,
                "webhook_url": settings.webhook_url or self.url + WEBHOOK_ROUTE,
            }
        )

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(WEBHOOK_ROUTE + "/"):
            # Mounted under its route, as a deployed function is under its URL: the receiver
            # sees the path below it (/scale), which it matches whole.
            reply = self._receiver().receive_request(
                Request(
                    {
                        **environ,
                        "SCRIPT_NAME": WEBHOOK_ROUTE,
                        "PATH_INFO": request.path[len(WEBHOOK_ROUTE) :],
                    }
                )
            )
            response = Response(
                json.dumps(reply.body), status=reply.status, mimetype="application/json"
            )
        elif request.path.startswith(FRAMES_ROUTE + "/") and request.method in ("GET", "HEAD"):
            response = self._frame(request.path.removeprefix(FRAMES_ROUTE + "/"))
        else:
            response = Response("not found\n", status=404)
        return response(environ, start_response)

    def _receiver(self) -> CallbackReceiver:
        """The receiver of the secrets kept in the workdir now: ``framesift
        rotate-webhook-secret`` changes them while this server runs (framesift.webhook_secrets)."""
        settings = with_local_secrets(self._settings)
        secrets = tuple(callback_secrets(settings).values())
        if secrets not in self._receivers:
            self._receivers = {
                secrets: bootstrap.callback_receiver(settings, self._adapters.documents)
            }
        return self._receivers[secrets]

    def _frame(self, path: str) -> Response:
        bucket, _, name = path.partition("/")
        if bucket not in self._buckets or not name:
            return Response("no such bucket\n", status=404)
        try:
            data = self._adapters.blobs.get(bucket, name)
        except (NotFound, ValueError):
            return Response("no such object\n", status=404)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # Vendors' pages load images from another origin (Label Studio's editor).
        return Response(
            data,
            mimetype=content_type,
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"},
        )
