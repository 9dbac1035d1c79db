"""Stored documents against the warehouse tables they are exported to: every column is a field
a stage writes (or one the exporter derives), so no document model leaves a field out."""

from __future__ import annotations

import pytest

from framesift.agreement import Match
from framesift.documents import (
    AnnotationRecord,
    DeadLetterRecord,
    DedupDecision,
    FrameLabeling,
    FramePrediction,
    FrameRecord,
    IgnoredUpload,
    LabelingStatus,
    VideoRecord,
)
from framesift.warehouse.schemas import (
    ANNOTATIONS_TABLE,
    DEAD_LETTERS_TABLE,
    FRAMES_TABLE,
    IGNORED_UPLOADS_TABLE,
    MODEL_MATCHES_TABLE,
    VIDEOS_TABLE,
)

# Set by the exporter on every row (row_of), or computed from the boxes for annotations.
DERIVED = {"deleted", "created_at", "box_count", "labels"}


@pytest.mark.parametrize(
    ("table", "fields"),
    [
        (VIDEOS_TABLE, set(VideoRecord.model_fields)),
        (
            FRAMES_TABLE,
            set(FrameRecord.model_fields)
            | {f"dedup_{name}" for name in DedupDecision.model_fields}
            | set(FramePrediction.model_fields)
            | set(FrameLabeling.model_fields),
        ),
        (ANNOTATIONS_TABLE, set(AnnotationRecord.model_fields)),
        (DEAD_LETTERS_TABLE, set(DeadLetterRecord.model_fields)),
        (
            MODEL_MATCHES_TABLE,
            set(Match.__dataclass_fields__)
            | {"id", "annotation_id", "frame_id", "vendor"}
            | {"model_version", "updated_at"},
        ),
        (IGNORED_UPLOADS_TABLE, set(IgnoredUpload.model_fields)),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_every_column_is_a_documented_field(table, fields):
    assert {column.name for column in table.columns} - DERIVED <= fields


def test_labeling_fields_written_are_only_those_set_and_plain_strings():
    fields = FrameLabeling(labeling_status=LabelingStatus.CANCELLED).as_fields()
    assert fields == {"labeling_status": "labeling_cancelled"}
    assert type(fields["labeling_status"]) is str
