"""The documented query "frames captured within 1 km of a point on a given day"
(warehouse/sql/frames_near.sql) on exported frames: embedded (DuckDB) and, marked emulated, on
the BigQuery emulator, as tests/integration/test_exporter.py runs the exporter on both."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from framesift import bootstrap
from framesift.bootstrap import Adapters
from framesift.config import Settings
from framesift.warehouse.views import frames_near
from tests.support.bulk import write_frame
from tests.support.stack import warehouse_stack

EIFFEL = (48.8584, 2.2945)
DAY = date(2024, 5, 4)
NOON = datetime(2024, 5, 4, 12, tzinfo=UTC)
KM_PER_DEGREE = 6371.0088 * math.pi / 180  # along a meridian


@pytest.fixture(params=["embedded", pytest.param("emulated", marks=pytest.mark.emulated)])
def stack(request, tmp_path, unique) -> tuple[Adapters, Settings]:
    return warehouse_stack(request, tmp_path / "work", unique)


def _north(km: float) -> tuple[float, float]:
    return EIFFEL[0] + km / KM_PER_DEGREE, EIFFEL[1]


def _east(km: float) -> tuple[float, float]:
    return EIFFEL[0], EIFFEL[1] + km / (KM_PER_DEGREE * math.cos(math.radians(EIFFEL[0])))


PLACES = {  # name: (position, capture time)
    "at-the-point": (EIFFEL, NOON),
    "north-500m": (_north(0.5), NOON + timedelta(minutes=5)),
    "east-990m": (_east(0.99), NOON.replace(hour=23, minute=59)),
    "east-1010m": (_east(1.01), NOON),  # just outside
    "north-5km": (_north(5.0), NOON),
    "next-day": (EIFFEL, NOON + timedelta(days=1)),
    "day-before-utc": (EIFFEL, NOON - timedelta(hours=12, seconds=1)),
    "no-place": ((None, None), NOON),
    "no-time": (EIFFEL, None),
    "deleted": (EIFFEL, NOON),
}


def test_frames_within_a_km_of_a_point_on_a_day_nearest_first(stack, unique):
    adapters, settings = stack
    documents = adapters.documents
    names = {}
    for index, (name, ((latitude, longitude), at)) in enumerate(PLACES.items()):
        frame_id = write_frame(
            documents,
            unique,
            index,
            captured_at=at,
            latitude=latitude,
            longitude=longitude,
            deleted=name == "deleted",
            metadata_notes=["creation_time dropped: 'x' is not a time"] if index == 1 else [],
        )
        names[frame_id] = name
    bootstrap.exporter(adapters, settings).run()

    query = frames_near(*EIFFEL, DAY, radius_km=1.0)
    rows = adapters.warehouse.query(
        f"SELECT * FROM ({query}) AS near WHERE id LIKE '%{unique}%'"  # the emulator's is shared
    )

    assert [names[row["id"]] for row in rows] == [
        "at-the-point",
        "north-500m",
        "east-990m",
    ]
    assert [row["distance_km"] for row in rows] == pytest.approx([0.0, 0.5, 0.99], abs=1e-6)
    assert rows[1]["captured_at"] == NOON + timedelta(minutes=5)
    assert rows[1]["latitude"] == pytest.approx(_north(0.5)[0])
    [exported] = adapters.warehouse.query(
        f"SELECT metadata_notes FROM {{dataset}}.frames WHERE id = '{rows[1]['id']}'"
    )
    assert json.loads(exported["metadata_notes"]) == ["creation_time dropped: 'x' is not a time"]


@pytest.mark.parametrize(
    ("latitude", "longitude", "radius_km"), [(91.0, 0.0, 1.0), (0.0, 181.0, 1.0), (0.0, 0.0, 0.0)]
)
def test_the_query_refuses_a_place_or_radius_that_is_none(latitude, longitude, radius_km):
    with pytest.raises(ValueError, match="no such place or radius"):
        frames_near(latitude, longitude, DAY, radius_km)
