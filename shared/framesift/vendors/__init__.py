"""Labeling vendors behind the :class:`~framesift.ports.LabelingVendor` port, one module each."""

from __future__ import annotations

from pydantic import ConfigDict

from framesift.config import Settings, Vendor
from framesift.ports import LabelingVendor
from framesift.wiring import Adapters

# Every callback model's config: unknown fields ignored (vendors add fields), NaN and infinities
# refused (Python's JSON reader accepts them). Whether a box lies inside its image is checked
# where it is stored (framesift.annotations.checked).
PAYLOAD = ConfigDict(extra="ignore", allow_inf_nan=False)


def build_vendor(settings: Settings, adapters: Adapters) -> LabelingVendor:
    """The configured vendor (imported lazily: a deployment loads only its own client)."""
    if settings.labeling_vendor is Vendor.SCALE:
        from framesift.vendors.scale import ScaleVendor

        return ScaleVendor(settings)
    if settings.labeling_vendor is Vendor.LABELSTUDIO:
        from framesift.vendors.labelstudio import LabelStudioVendor

        return LabelStudioVendor(settings, adapters.documents)
    from framesift.vendors.manifest import ManifestVendor

    return ManifestVendor(adapters.blobs, settings.frames_bucket)
