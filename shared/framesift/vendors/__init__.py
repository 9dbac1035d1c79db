"""Labeling vendors behind the :class:`~framesift.ports.LabelingVendor` port, one module each."""

from __future__ import annotations

from pydantic import ConfigDict

# Every callback model's config: unknown fields ignored (vendors add fields), NaN and infinities
# refused (Python's JSON reader accepts them). Whether a box lies inside its image is checked
# where it is stored (framesift.annotations.checked).
PAYLOAD = ConfigDict(extra="ignore", allow_inf_nan=False)
