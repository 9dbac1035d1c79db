"""Warehouse table schemas, defined once for BigQuery, the DuckDB warehouse and the infra code.

Named ``*_TABLE``: a table is not the document collection it is exported from
(:class:`framesift.topology.Collections`).
"""

from __future__ import annotations

from framesift.ports import Column, TableSchema

_TIMESTAMPS = (
    Column("created_at", "TIMESTAMP", required=True),
    Column("updated_at", "TIMESTAMP", required=True, description="newest version wins on MERGE"),
    Column("deleted", "BOOL", description="gone from the document store, or a deletion"),
)

# framesift.capture.CaptureFields, on a video's row and each frame's (added after the first
# release's columns: BigQuery adds columns at the end of a table in place).
_CAPTURE = (
    Column(
        "captured_at",
        "TIMESTAMP",
        description=(
            "when it was taken (UTC); a video frame: the video's time plus timestamp_ms, or the"
            " GPS time where the video has a GoPro GPMF track"
        ),
    ),
    Column("capture_utc_offset", "STRING", description="the camera's UTC offset, e.g. +02:00"),
    Column(
        "latitude",
        "FLOAT64",
        description=(
            "where it was taken, WGS 84 degrees; a video frame: on its video's track where it"
            " has one (DJI .SRT, GoPro GPMF)"
        ),
    ),
    Column("longitude", "FLOAT64", description="WGS 84 degrees"),
    Column("altitude", "FLOAT64", description="metres above sea level"),
    Column("camera_make", "STRING"),
    Column("camera_model", "STRING"),
    Column("camera_software", "STRING", description="the camera's firmware or OS version"),
    Column(
        "metadata_notes",
        "STRING",
        description="capture metadata dropped as bad, and why: a JSON array",
    ),
)

# framesift.provenance.Provenance: where a video and its frames were sampled (all null: by the
# functions, from the raw bucket), on a video's row and each frame's (#33, added at the end).
_PROVENANCE = (
    Column(
        "sampled_by", "STRING", description="edge: sampled by an edge agent; null: in the cloud"
    ),
    Column("edge_id", "STRING", description="the edge agent that sampled it"),
    Column("source_path", "STRING", description="the video's path on the edge"),
    Column("source_size_bytes", "INT64", description="the video's size on the edge"),
    Column("source_sha256", "STRING", description="the SHA-256 of the video on the edge"),
    Column(
        "sampling_settings",
        "STRING",
        description="what the edge sampled and deduplicated with, as JSON",
    ),
    Column("framesift_version", "STRING", description="the edge's framesift"),
)

VIDEOS_TABLE = TableSchema(
    name="videos",
    columns=(
        Column("id", "STRING", required=True, description="bucket/object#generation digest"),
        Column("collector", "STRING", required=True),
        Column("video_id", "STRING", required=True),
        Column("bucket", "STRING", required=True),
        Column("object_name", "STRING", required=True),
        Column("generation", "INT64", required=True),
        Column("status", "STRING", required=True, description="processing, sampled or failed"),
        Column("size_bytes", "INT64"),
        Column("duration_s", "FLOAT64"),
        Column("fps", "FLOAT64"),
        Column("width", "INT64"),
        Column("height", "INT64"),
        Column("codec", "STRING"),
        Column("policy", "STRING", description="the sampling policy applied, as JSON"),
        Column("segments_total", "INT64"),
        Column("frames_sampled", "INT64"),
        Column("error", "STRING"),
        *_TIMESTAMPS,
        *_CAPTURE,
        # The picture (#30): width and height are as displayed.
        Column("rotation", "INT64", description="degrees clockwise turned for display"),
        Column("transfer", "STRING", description="colour transfer: bt709, smpte2084 (PQ), ..."),
        Column("primaries", "STRING", description="colour primaries: bt709, bt2020, ..."),
        Column("interlaced", "BOOL", description="sampled through a deinterlacer"),
        Column("stream_index", "INT64", description="the video stream sampled (ffprobe's index)"),
        Column("tone_mapped", "BOOL", description="HDR frames made SDR (BT.709); null: not HDR"),
        Column("tone_map_note", "STRING", description="why an HDR video was not tone-mapped"),
        *_PROVENANCE,
    ),
    partition_by="created_at",
    cluster_by=("collector",),
)

FRAMES_TABLE = TableSchema(
    name="frames",
    columns=(
        Column("id", "STRING", required=True),
        Column("source", "STRING", required=True, description="video (a sampled frame) or image"),
        Column("video_doc_id", "STRING", required=True),
        Column("collector", "STRING", required=True),
        Column("video_id", "STRING", required=True),
        Column("source_generation", "INT64", required=True),
        Column("timestamp_ms", "INT64", required=True, description="position in the video"),
        Column("bucket", "STRING", required=True),
        Column("object_name", "STRING", required=True),
        Column("width", "INT64"),
        Column("height", "INT64"),
        Column("size_bytes", "INT64"),
        Column("sha256", "STRING"),
        Column("phash", "STRING", description="64-bit perceptual hash, 16 hex digits"),
        Column("sharpness", "FLOAT64", description="variance of the Laplacian, 128x128 gray"),
        Column("brightness", "FLOAT64", description="mean gray level, 0..255"),
        Column("dedup_status", "STRING", description="kept, dropped, or failed (dedup_error)"),
        Column("dedup_drop_reason", "STRING", description="exact_duplicate, near_duplicate, ..."),
        Column("dedup_duplicate_of", "STRING", description="the kept frame this one repeats"),
        Column("dedup_distance", "INT64", description="pHash bits from duplicate_of"),
        Column("dedup_scope", "STRING", description="video or dataset"),
        Column("dedup_decided_at", "TIMESTAMP"),
        Column(
            "labeling_status",
            "STRING",
            description="queued, selected, requested, skipped, labeled, labeling_failed, ...",
        ),
        Column("labeling_vendor", "STRING", description="manifest, scale or labelstudio"),
        Column("labeling_task_id", "STRING"),
        Column("labeling_requested_at", "TIMESTAMP"),
        Column("labeling_error", "STRING"),
        Column("labeling_skip_reason", "STRING", description="why selection left it out"),
        Column("labeling_priority", "FLOAT64", description="selection's rank: higher first"),
        Column("labeling_selected_as", "STRING", description="a round's: priority or audit"),
        Column("labeling_round", "STRING", description="the labeling round that decided it"),
        Column("labeled_at", "TIMESTAMP"),
        Column("model_version", "STRING", description="the model that pre-labeled it"),
        Column("model_uncertainty", "FLOAT64", description="how unsure the model is, 0..1"),
        Column("model_boxes", "INT64", description="the pre-label's boxes"),
        *_TIMESTAMPS,
        *_CAPTURE,
        # The picture (#30): width and height are as displayed (the JPEG's, the photo's shown).
        Column("rotation", "INT64", description="a video frame: degrees clockwise turned"),
        Column("orientation", "INT64", description="a photo: its EXIF Orientation, applied"),
        *_PROVENANCE,
        # Dedup at fleet scale (#32).
        Column("dedup_error", "STRING", description="why it failed: a corrupt index document"),
        Column(
            "dedup_index_reads",
            "INT64",
            description="documents of dedup's indexes its decision read (Firestore reads)",
        ),
        Column(
            "dedup_index_writes",
            "INT64",
            description="documents of dedup's indexes its decision wrote (Firestore writes)",
        ),
    ),
    partition_by="created_at",
    cluster_by=("collector", "video_doc_id"),
)

ANNOTATIONS_TABLE = TableSchema(
    name="annotations",
    columns=(
        Column("id", "STRING", required=True, description="{vendor}~{annotation id}"),
        Column("frame_id", "STRING"),
        Column("vendor", "STRING", required=True),
        Column("task_id", "STRING"),
        Column("annotation_id", "STRING", required=True),
        Column("status", "STRING", required=True, description="submitted, empty, ..., deleted"),
        Column("box_count", "INT64"),
        Column("labels", "STRING", description="the distinct labels, comma-separated"),
        Column("image_width", "INT64"),
        Column("image_height", "INT64"),
        Column("annotator", "STRING"),
        Column("vendor_created_at", "TIMESTAMP"),
        Column("vendor_updated_at", "TIMESTAMP"),
        Column("error", "STRING"),
        Column(
            "unsupported",
            "STRING",
            description="regions no export holds (an ellipse, a line), comma-separated: the "
            "frame is left out of snapshots",
        ),
        Column("received_at", "TIMESTAMP"),
        Column("source", "STRING", description="human, or model (a pre-label, status predicted)"),
        Column("model_version", "STRING", description="a pre-label's model"),
        Column("uncertainty", "FLOAT64", description="a pre-label's: how unsure the model is"),
        *_TIMESTAMPS,
    ),
    partition_by="created_at",
    cluster_by=("vendor", "frame_id"),
)

ANNOTATION_BOXES_TABLE = TableSchema(
    name="annotation_boxes",
    columns=(
        Column("id", "STRING", required=True, description="{annotation id}#{slot}"),
        Column("annotation_id", "STRING", required=True),
        Column("frame_id", "STRING"),
        Column("vendor", "STRING", required=True),
        Column("label", "STRING"),
        Column("left_px", "FLOAT64"),
        Column("top_px", "FLOAT64"),
        Column("width_px", "FLOAT64"),
        Column("height_px", "FLOAT64"),
        Column("x", "FLOAT64", description="left edge, fraction of the image width"),
        Column("y", "FLOAT64"),
        Column("w", "FLOAT64"),
        Column("h", "FLOAT64"),
        Column("rotation", "FLOAT64"),
        Column("shape", "STRING", description="box, polygon, keypoint or mask"),
        Column(
            "points",
            "STRING",
            description="a polygon's vertices or a keypoint: JSON [x0, y0, x1, y1, ...], "
            "fractions of the image",
        ),
        Column(
            "mask_rle",
            "STRING",
            description="a mask: JSON, Label Studio's brush RLE (framesift export decodes it)",
        ),
        Column("region_id", "STRING"),
        Column("score", "FLOAT64", description="a pre-label box's confidence"),
        *_TIMESTAMPS,
    ),
    partition_by="created_at",
    cluster_by=("frame_id",),
)

MODEL_MATCHES_TABLE = TableSchema(
    name="model_matches",
    columns=(
        Column("id", "STRING", required=True, description="{annotation id}#{slot}"),
        Column("annotation_id", "STRING", required=True, description="the human label"),
        Column("frame_id", "STRING"),
        Column("vendor", "STRING", required=True),
        Column("model_version", "STRING"),
        Column("label", "STRING"),
        Column(
            "outcome",
            "STRING",
            description="tp (a model box matching a human one at IoU >= 0.5), fp, fn",
        ),
        Column("score", "FLOAT64", description="the model box's (none for fn)"),
        Column("iou", "FLOAT64"),
        Column("model_slot", "INT64", description="the box's index in the pre-label"),
        Column("human_slot", "INT64", description="the box's index in the human label"),
        *_TIMESTAMPS,
    ),
    partition_by="created_at",
    cluster_by=("model_version", "frame_id"),
)

DEAD_LETTERS_TABLE = TableSchema(
    name="dead_letters",
    columns=(
        Column("id", "STRING", required=True, description="{subscriber}~{message id}"),
        Column("subscriber", "STRING", required=True),
        Column("message_id", "STRING"),
        Column("error", "STRING"),
        Column("permanent", "BOOL"),
        Column("attempts", "INT64"),
        *_TIMESTAMPS,
    ),
    partition_by="created_at",
    cluster_by=("subscriber",),
)

IGNORED_UPLOADS_TABLE = TableSchema(
    name="ignored_uploads",
    columns=(
        Column("id", "STRING", required=True, description="bucket/object#generation digest"),
        Column("bucket", "STRING", required=True),
        Column("object_name", "STRING", required=True),
        Column("generation", "INT64", required=True),
        Column("size_bytes", "INT64"),
        Column("reason", "STRING", required=True, description="why no stage takes it"),
        Column("ignored_by", "STRING", description="the function it reached: sampler or dedup"),
        *_TIMESTAMPS,
    ),
    partition_by="created_at",
)

ALL_TABLES = (
    VIDEOS_TABLE,
    FRAMES_TABLE,
    ANNOTATIONS_TABLE,
    ANNOTATION_BOXES_TABLE,
    MODEL_MATCHES_TABLE,
    DEAD_LETTERS_TABLE,
    IGNORED_UPLOADS_TABLE,
)
