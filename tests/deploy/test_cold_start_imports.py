"""Each function loads only what it runs: importing its entry point and building its handler,
configured as deployed, must not pull in another vendor's SDK, the dev stack or the command
line (a serverless function pays for every import on each cold start)."""

from __future__ import annotations

import pytest

from framesift.topology import FUNCTIONS, LABELER, WEBHOOK
from framesift.vendors.registry import VENDORS
from framesift_dev.loaded import DEPLOYED_ENV, loaded

FORBIDDEN_EVERYWHERE = {"framesift_dev", "framesift.cli", "framesift.embedded", "typer", "rich"}
# The model's runtime: only a labeler given a model (FRAMESIFT_MODEL_URI) loads it, on its first
# batch; the onnx package (building models) is for tests and benchmarks only.
MODEL_RUNTIMES = {"onnxruntime", "onnx"}
# The vendors' SDKs: the labeler loads only the configured vendor's; the rest never.
VENDOR_SDKS = {"label_studio_sdk", "scaleapi"}


def _top(modules: frozenset[str]) -> set[str]:
    return set(modules) | {name.split(".", 1)[0] for name in modules}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_a_function_loads_no_dev_tool_and_no_vendor_sdk(spec):
    found = _top(loaded(spec, {**DEPLOYED_ENV, "FRAMESIFT_LABELING_VENDOR": "manifest"}).modules)
    assert found & FORBIDDEN_EVERYWHERE == set()
    assert found & VENDOR_SDKS == set()  # manifest vendor: no SDK at all
    assert found & MODEL_RUNTIMES == set()


@pytest.mark.parametrize(
    ("vendor", "sdk"), [("scale", "scaleapi"), ("labelstudio", "label_studio_sdk")]
)
def test_the_labeler_loads_only_its_vendors_sdk(vendor, sdk):
    found = _top(loaded(LABELER, {**DEPLOYED_ENV, "FRAMESIFT_LABELING_VENDOR": vendor}).modules)
    assert sdk in found
    assert found & (VENDOR_SDKS - {sdk}) == set()


def test_the_webhook_loads_every_vendors_callback_model_before_its_first_request():
    """A function's archive ships what an instance loads before its first request: the webhook
    must load the models it parses callbacks with then, or the deployed webhook would fail
    every callback on a module its archive does not hold."""
    found = loaded(WEBHOOK, {**DEPLOYED_ENV, "FRAMESIFT_LABELING_VENDOR": "manifest"}).modules
    payloads = {
        spec.callback.payload.partition(":")[0]
        for spec in VENDORS.values()
        if spec.callback is not None
    }
    assert payloads and payloads <= found
