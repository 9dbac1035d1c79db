"""The analysts' views, one SQL file each in ``sql/``, in SQL that BigQuery and DuckDB both
read. ``{dataset}`` stays for the warehouse adapter to substitute; ``$name`` placeholders are
filled here (:class:`string.Template`, so SQL's braces need no escaping). Lines starting with
``--`` document a view and are left out of it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from importlib.resources import files
from string import Template

from framesift.documents import LIVE_STATUSES

# In dependency order: a view reads only tables and the views before it.
_PLAIN = ("frame_labels", "labeled_boxes", "label_counts", "model_match_rows")
# labeling_cost.sql per group of frames: per collector, and per uploaded video or photo.
COST_GROUPS = {
    "labeling_cost": ("collector",),
    "labeling_cost_by_source": ("collector", "video_doc_id"),
}
# model_quality.sql per group of model_match_rows columns; the last key is always the class.
QUALITY_GROUPS = {
    "model_quality": ("model_version", "label"),
    "model_quality_by_collector": ("model_version", "collector", "label"),
    "model_quality_by_day": ("model_version", "day", "label"),
}
_AFTER_QUALITY = ("model_map", "model_disagreements")


def _template(name: str) -> Template:
    text = files(__package__).joinpath("sql", f"{name}.sql").read_text()
    sql = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return Template("\n".join(sql))


def _quality(group: Sequence[str]) -> str:
    keys = ", ".join(group)
    return _template("model_quality").substitute(
        keys=keys,
        partition=f"PARTITION BY {keys}",
        counted_keys=", ".join(f"c.{key}" for key in group),
        joined=" AND ".join(f"a.{key} = c.{key}" for key in group),
    )


def views(price_per_task: float) -> dict[str, str]:
    """Every view's SQL by name, in the order they can be created. The price is written in
    exponent form, a float literal in both dialects (0.012 would be a DuckDB DECIMAL)."""
    values = {
        "live_statuses": ", ".join(f"'{status.value}'" for status in LIVE_STATUSES),
        "price_per_task": f"{price_per_task:e}",
    }
    made = {name: _template(name).substitute(values) for name in _PLAIN}
    made |= {
        name: _template("labeling_cost").substitute(values, keys=", ".join(group))
        for name, group in COST_GROUPS.items()
    }
    made |= {name: _quality(group) for name, group in QUALITY_GROUPS.items()}
    made |= {name: _template(name).substitute(values) for name in _AFTER_QUALITY}
    return made


def _float(value: float) -> str:
    """A float literal in both dialects, at full precision (a plain 48.8584 is a DuckDB
    DECIMAL)."""
    return f"{value:.17e}"


def frames_near(latitude: float, longitude: float, day: date, radius_km: float = 1.0) -> str:
    """SQL for the frames captured within ``radius_km`` of a point on a UTC ``day``, nearest
    first (``sql/frames_near.sql``; ``{dataset}`` stays for the warehouse adapter)."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180 and radius_km > 0):
        raise ValueError(f"no such place or radius: {latitude}, {longitude}, {radius_km} km")
    return _template("frames_near").substitute(
        latitude=_float(latitude),
        longitude=_float(longitude),
        radians=_float(math.pi / 180),
        radius_km=_float(radius_km),
        day=day.strftime("%Y-%m-%d"),  # a date (or datetime) object: no quote can get in
    )
