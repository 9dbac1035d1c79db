"""Contact sheets: per video, every sampled frame in time order, the kept ones in colour with
their timestamp and the dropped ones greyed with the frame they repeat, so a user can see at a
glance whether the dedup threshold is right; and an HTML page linking them.

With a model, the page and :func:`model_agreement` also show how the model agrees with the
human labels, from the warehouse's views (precision, recall and AP at IoU 0.5 per class, mAP,
and the frames where they disagree most)."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from framesift.capture import utc_offset
from framesift.ports import BlobStore, DocumentStore, Warehouse
from framesift.provenance import provenance_line
from framesift.topology import Collections
from framesift.warehouse.schemas import ALL_TABLES
from framesift.warehouse.views import views

if TYPE_CHECKING:
    from framesift.bootstrap import Adapters

THUMB_WIDTH = 240
COLUMNS = 5
CAPTION = 34  # pixels of text under each thumbnail
BACKGROUND = (250, 250, 250)
KEPT_BORDER = (30, 140, 60)
DROPPED_BORDER = (190, 190, 190)


@dataclass(frozen=True)
class Sheet:
    video_doc_id: str
    source: str  # the uploaded object's name, which people recognise
    path: Path
    frames: int
    kept: int
    captured: str = ""  # when, where and with what it was taken, as far as it says
    provenance: str = ""  # where it was sampled, when at an edge (framesift.provenance)
    # Documents of dedup's indexes its frames' decisions read and wrote (Firestore operations).
    index_reads: int = 0
    index_writes: int = 0


def captured(record: dict[str, Any]) -> str:
    """A source's capture metadata in a line: its local time (or UTC), place and camera, and
    how many values were dropped as bad ('' when it has none)."""
    parts = []
    if at := record.get("captured_at"):
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        offset = record.get("capture_utc_offset")
        zone = utc_offset(offset) if offset else UTC
        parts.append(f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S} {offset or 'UTC'}")
    if record.get("latitude") is not None and record.get("longitude") is not None:
        place = f"{record['latitude']:.5f}, {record['longitude']:.5f}"
        if record.get("altitude") is not None:
            place += f", {record['altitude']:.0f} m"
        parts.append(place)
    camera = " ".join(str(record[k]) for k in ("camera_make", "camera_model") if record.get(k))
    if record.get("camera_software"):
        camera += f" ({record['camera_software']})"
    if camera.strip():
        parts.append(camera.strip())
    if notes := record.get("metadata_notes"):
        parts.append(f"{len(notes)} metadata value(s) dropped as bad")
    return "; ".join(parts)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


TITLE = 24  # pixels of the sheet's title: the source's name and id


def contact_sheet(
    frames: list[dict[str, Any]], blobs: BlobStore, path: Path, title: str
) -> tuple[int, int]:
    """Draw ``frames`` (one video's) to ``path`` under ``title``; returns (frames drawn, kept)."""
    frames = sorted(frames, key=lambda f: f["timestamp_ms"])
    times = {f["id"]: f["timestamp_ms"] for f in frames}
    thumbs: list[tuple[dict[str, Any], Image.Image]] = []
    for frame in frames:
        with Image.open(io.BytesIO(blobs.get(frame["bucket"], frame["object_name"]))) as opened:
            image: Image.Image = opened.convert("RGB")
        image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 3))
        thumbs.append((frame, image))
    cell_height = max((image.height for _, image in thumbs), default=1) + CAPTION
    rows = max(1, -(-len(thumbs) // COLUMNS))
    sheet = Image.new(
        "RGB", (COLUMNS * (THUMB_WIDTH + 8) + 8, TITLE + rows * (cell_height + 8) + 8)
    )
    sheet.paste(BACKGROUND, (0, 0, *sheet.size))
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 6), title, fill=(0, 0, 0))
    kept = 0
    for index, (frame, image) in enumerate(thumbs):
        x = 8 + (index % COLUMNS) * (THUMB_WIDTH + 8)
        y = TITLE + 8 + (index // COLUMNS) * (cell_height + 8)
        is_kept = frame.get("dedup_status") == "kept"
        kept += is_kept
        if not is_kept:
            image = ImageEnhance.Brightness(ImageOps.grayscale(image).convert("RGB")).enhance(0.6)
        sheet.paste(image, (x, y))
        draw.rectangle(
            (x - 2, y - 2, x + image.width + 1, y + image.height + 1),
            outline=KEPT_BORDER if is_kept else DROPPED_BORDER,
            width=2,
        )
        caption = f"{_seconds(frame['timestamp_ms'])}  {frame.get('dedup_status', 'undecided')}"
        detail = ""
        if not is_kept and frame.get("dedup_duplicate_of"):
            of = frame["dedup_duplicate_of"]
            where = _seconds(times[of]) if of in times else of[-16:]
            detail = f"repeats {where} ({frame.get('dedup_distance')} bits)"
        elif not is_kept:
            detail = str(frame.get("dedup_drop_reason") or "")
        draw.text((x, y + image.height + 4), caption, fill=(0, 0, 0))
        draw.text((x, y + image.height + 18), detail, fill=(90, 90, 90))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, "PNG")
    return len(thumbs), kept


def write_report(
    documents: DocumentStore,
    blobs: BlobStore,
    video_doc_ids: list[str],
    out: Path,
    agreement: ModelAgreement | None = None,
) -> list[Sheet]:
    sheets = []
    for video_doc_id in video_doc_ids:
        frames = documents.where(Collections.FRAMES, "video_doc_id", video_doc_id)
        if not frames:
            continue
        record = documents.get(Collections.VIDEOS, video_doc_id) or frames[0]  # a photo's own
        source = str(record["object_name"])
        path = out / f"{video_doc_id}.png"
        taken = captured(record)
        title = f"{source}  ({video_doc_id})" + (f"  {taken}" if taken else "")
        count, kept = contact_sheet(frames, blobs, path, title)
        reads, writes = (
            sum(f.get(f"dedup_index_{n}") or 0 for f in frames) for n in ("reads", "writes")
        )
        sheets.append(
            Sheet(
                video_doc_id,
                source,
                path,
                count,
                kept,
                taken,
                provenance_line(record),
                reads,
                writes,
            )
        )
    items = "\n".join(
        f"<h2>{html.escape(s.source)} <small>({html.escape(s.video_doc_id)})</small>:"
        f" {s.kept} kept of {s.frames}</h2>"
        f"<p>dedup index: {s.index_reads} documents read, {s.index_writes} written</p>"
        + (f"<p>captured {html.escape(s.captured)}</p>" if s.captured else "")
        + (f"<p>{html.escape(s.provenance)}</p>" if s.provenance else "")
        + f'<a href="{html.escape(s.path.name)}"><img src="{html.escape(s.path.name)}"'
        f' style="max-width:100%"></a>'
        for s in sheets
    )
    (out / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>framesift report</title>"
        "<style>body{font-family:sans-serif;margin:2em}</style>"
        f"<h1>framesift report</h1><p>Kept frames in colour, dropped ones greyed with the frame"
        f" they repeat.</p>\n{agreement_html(agreement) if agreement else ''}\n{items}\n"
    )
    return sheets


@dataclass(frozen=True)
class ModelAgreement:
    """The warehouse's model-quality views, as the report shows them."""

    overall: list[dict[str, Any]]  # model_map: per model version
    per_class: list[dict[str, Any]]  # model_quality
    disagreements: list[dict[str, Any]]  # model_disagreements, most first

    def __bool__(self) -> bool:
        return bool(self.overall)


def model_agreement(warehouse: Warehouse, worst: int = 10) -> ModelAgreement:
    """The agreement figures of every model version the warehouse has matches of."""
    return ModelAgreement(
        overall=warehouse.query("SELECT * FROM {dataset}.model_map ORDER BY model_version"),
        per_class=warehouse.query(
            "SELECT * FROM {dataset}.model_quality ORDER BY model_version, label"
        ),
        disagreements=warehouse.query(
            "SELECT * FROM {dataset}.model_disagreements WHERE disagreements > 0"  # noqa: S608
            f" ORDER BY disagreements DESC, frame_id LIMIT {int(worst)}"
        ),
    )


def _cell(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _html_table(title: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row.values()) + "</tr>"
        for row in rows
    )
    return f"<h2>{html.escape(title)}</h2><table border=1 cellpadding=4>{head}{body}</table>"


def agreement_html(agreement: ModelAgreement) -> str:
    return "\n".join(
        (
            _html_table("Model against humans (IoU 0.5)", agreement.overall),
            _html_table("Per class", agreement.per_class),
            _html_table("Frames where they disagree most", agreement.disagreements),
        )
    )


def sources(documents: DocumentStore, collector: str | None) -> list[str]:
    """The ids of the videos, then the photos, a report draws: ``collector``'s, or all."""
    if collector:
        videos = [doc["id"] for doc in documents.where(Collections.VIDEOS, "collector", collector)]
        frames = documents.where(Collections.FRAMES, "collector", collector)
        images = [doc["id"] for doc in frames if doc.get("source") == "image"]
    else:
        videos = [doc["id"] for doc in documents.changed_since(Collections.VIDEOS, None)]
        images = [doc["id"] for doc in documents.where(Collections.FRAMES, "source", "image")]
    return videos + images


def report(
    adapters: Adapters, price_per_task: float, out: Path, collector: str | None
) -> tuple[list[Sheet], ModelAgreement]:
    """The contact sheets of ``collector``'s sources (or all) and the page linking them in
    ``out``, with the model's agreement from the warehouse (its views made first: a warehouse
    no export has reached yet still answers)."""
    chosen = sources(adapters.documents, collector)
    warehouse = adapters.warehouse
    warehouse.ensure_tables(ALL_TABLES)
    warehouse.ensure_views(views(price_per_task))
    agreement = model_agreement(warehouse)
    return write_report(adapters.documents, adapters.blobs, chosen, out, agreement), agreement
