"""Each function loads only what it runs: importing its entry point and building its handler
must not pull in another vendor's SDK, the dev stack or the command line (a serverless function
pays for every import on each cold start)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from framesift.topology import FUNCTIONS, Trigger

FORBIDDEN_EVERYWHERE = {"framesift_dev", "framesift.cli", "framesift.local", "typer", "rich"}
# The vendors' SDKs: the labeler loads only the configured vendor's; the rest never.
VENDOR_SDKS = {"label_studio_sdk", "scaleapi"}

_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from framesift import runtime
if sys.argv[2] == "http":
    runtime.callbacks()
else:
    runtime.handler(sys.argv[3])
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(function: str, trigger: Trigger, tmp_path, **env: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, f"functions/{function}/main.py", trigger.value, function],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "FRAMESIFT_BACKEND": "embedded",
            "FRAMESIFT_WORKDIR": str(tmp_path),
            **env,
        },
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _top(modules: set[str]) -> set[str]:
    return modules | {name.split(".", 1)[0] for name in modules}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_a_function_loads_no_dev_tool_and_no_vendor_sdk(spec, tmp_path):
    loaded = _top(_loaded(spec.name, spec.trigger, tmp_path))
    assert loaded & FORBIDDEN_EVERYWHERE == set()
    assert loaded & VENDOR_SDKS == set()  # manifest vendor: no SDK at all


@pytest.mark.parametrize(("vendor", "sdk"), [("scale", "scaleapi")])
def test_the_labeler_loads_only_its_vendors_sdk(vendor, sdk, tmp_path):
    loaded = _top(
        _loaded(
            "labeler",
            Trigger.PUBSUB,
            tmp_path,
            FRAMESIFT_LABELING_VENDOR=vendor,
            FRAMESIFT_SCALE_API_KEY="test-key",
        )
    )
    assert sdk in loaded
    assert loaded & (VENDOR_SDKS - {sdk}) == set()
