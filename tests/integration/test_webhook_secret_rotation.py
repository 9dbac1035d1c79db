"""Label Studio's webhook secret rotated while annotations arrive, none refused (issue #29,
points 3 and 4), against a real Label Studio posting to ``framesift serve``'s server; and a
webhook without a secret refused before anything is registered."""

from __future__ import annotations

import threading

import httpx
import pytest

from framesift import bootstrap
from framesift.bootstrap import build_adapters
from framesift.config import section
from framesift.errors import VendorRejected
from framesift.serve import LocalServer
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from framesift.vendors.registry import LABELSTUDIO_CALLBACK
from framesift.webhook_secrets import ensure_local_secret, retire, rotate, secret_file
from tests.support.labels import labelstudio_settings, submit_box
from tests.support.payloads import kept_frames
from tests.support.waiting import wait_for

pytestmark = pytest.mark.labelstudio
TASKS = 12


@pytest.fixture
def settings(embedded_settings, labelstudio, unique):
    """No webhook secret set: the one kept in the workdir (`framesift run` and `serve`)."""
    return labelstudio_settings(
        embedded_settings, labelstudio, f"rotation-{unique}", labelstudio_webhook_secret=None
    )


def _hook_secret(vendor: LabelStudioVendor) -> str:
    (hook,) = vendor.client.webhooks.list(project=str(vendor.project_id()))
    return str((hook.headers or {})[LABELSTUDIO_CALLBACK.header])


def test_a_rotation_while_annotations_arrive_refuses_none(settings):
    adapters = build_adapters(settings)
    with LocalServer(settings, adapters, "127.0.0.1", 0) as server:
        raw = server.settings_for(settings)  # reads the workdir's secrets at each call
        first, kept_in = ensure_local_secret(raw)
        assert kept_in == secret_file(settings) and kept_in.stat().st_mode & 0o777 == 0o600
        vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, first))
        bootstrap.labeler(adapters, first, vendor).handle(kept_frames(first, TASKS))
        tasks = sorted(t.id for t in vendor.client.tasks.list(project=vendor.project_id()))
        old = _hook_secret(vendor)
        annotated: list[int] = []
        started = threading.Event()

        def annotator() -> None:
            for task_id in tasks:
                submit_box(vendor, task_id)
                annotated.append(task_id)
                if len(annotated) == 3:
                    started.set()

        thread = threading.Thread(target=annotator)
        thread.start()
        started.wait(timeout=120)
        rotation = rotate(raw, adapters.documents)  # while the annotator goes on
        thread.join()
        stored = wait_for(
            lambda: (
                len(
                    [
                        a
                        for a in adapters.documents.where("annotations", "vendor", "labelstudio")
                        if a["status"] == "submitted"
                    ]
                )
                == TASKS
                or None
            ),
            "every annotation stored",
            timeout=60,
        )
        retire(raw)
        refused = httpx.post(
            rotation.webhook, content=b"{}", headers={LABELSTUDIO_CALLBACK.header: old}
        )

    assert stored and len(annotated) == TASKS
    assert _hook_secret(vendor) != old  # Label Studio sends the new one
    assert refused.status_code == 401  # the old one, retired, is refused


def test_a_labeler_refuses_to_register_a_webhook_without_a_secret(settings):
    adapters = build_adapters(settings)
    unset = settings.model_copy(update={"webhook_url": "http://127.0.0.1:9/hooks"})
    with pytest.raises(VendorRejected, match="FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET"):
        LabelStudioVendor(adapters.documents, section(LabelStudioConfig, unset))
