"""Labeling vendors behind the :class:`~framesift.ports.LabelingVendor` port, one module each."""

from __future__ import annotations

from framesift.config import Settings, Vendor
from framesift.ports import LabelingVendor
from framesift.wiring import Adapters


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
