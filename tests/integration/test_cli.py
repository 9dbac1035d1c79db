"""The command line: run's summary, the report's contact sheets, one-line errors, help, upload."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from framesift import cli
from framesift.config import Backend, Settings
from framesift.naming import upload_name, upload_refusal
from framesift.report import COLUMNS, THUMB_WIDTH, TITLE
from framesift.upload import upload_file

runner = CliRunner()


def _run(tmp_path, *paths, extra=()):
    args = ["run", *map(str, paths), "--workdir", str(tmp_path / "work"), "--json", *extra]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_summarises_frames_drops_tasks_and_cost(media, tmp_path):
    summary = _run(tmp_path, media["parked"], media["three_shots"], extra=("--price", "0.5"))

    assert [v["outcome"] for v in summary["videos"]] == ["sampled", "sampled"]
    dropped = sum(summary["dropped"].values())
    assert summary["frames_sampled"] == summary["kept"] + dropped
    assert summary["dropped"]["near_duplicate"] >= 5  # the parked car
    assert summary["labeling_tasks"] == summary["kept"]
    assert summary["estimated_cost_usd"] == pytest.approx(0.5 * summary["kept"])
    assert summary["saved_usd"] == pytest.approx(0.5 * dropped)


def test_run_takes_the_sampling_policy_and_threshold(media, tmp_path):
    strict = _run(tmp_path / "a", media["parked"], extra=("--threshold", "0", "--every", "0.5"))
    assert strict["frames_sampled"] == 12  # two per second of a 6 s video
    loose = _run(tmp_path / "b", media["parked"], extra=("--threshold", "20"))
    assert loose["kept"] <= strict["kept"]


def test_report_draws_one_cell_per_frame_greying_the_dropped(media, tmp_path):
    summary = _run(tmp_path, media["parked"])
    out = tmp_path / "report"
    result = runner.invoke(
        cli.app, ["report", "--workdir", str(tmp_path / "work"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output

    [video] = summary["videos"]
    sheet = Image.open(out / f"{video['video']}.png").convert("RGB")
    frames = summary["frames_sampled"]
    rows = -(-frames // COLUMNS)
    assert sheet.width == COLUMNS * (THUMB_WIDTH + 8) + 8
    cell_height = (sheet.height - TITLE - 8) // rows - 8
    colourful = []
    for index in range(frames):
        x = 8 + (index % COLUMNS) * (THUMB_WIDTH + 8) + THUMB_WIDTH // 2
        y = TITLE + 8 + (index // COLUMNS) * (cell_height + 8) + 20
        pixels = [sheet.getpixel((x + dx, y)) for dx in range(-40, 40, 4)]
        colourful.append(any(max(p) - min(p) > 30 for p in pixels))
    # The parked car: the first frame is kept in colour, the rest greyed as its duplicates.
    assert colourful == [True] + [False] * (frames - 1)
    index = (out / "index.html").read_text()
    # People see the file they uploaded beside the id, in the page and the command's table.
    assert video["video"] in index and video["source"] in index
    assert video["source"] == "local/parked.mp4" and "local/parked.mp4" in result.output


def test_errors_are_one_line_unless_debug(monkeypatch, capsys, tmp_path):
    args = ["framesift", "export", "--format", "coco", "--out", str(tmp_path), "--split", "1,1,1"]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: the split needs three fractions that sum to 1, e.g. 0.8,0.1,0.1"
    ]
    assert "Traceback" not in err

    monkeypatch.setattr(sys, "argv", [args[0], "--debug", *args[1:]])
    with pytest.raises(ValueError, match="three fractions"):
        cli.main()


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "upload",
        "report",
        "export",
        "export-warehouse",
        "ingest",
        "reconcile",
        "bench",
        "make-sample",
        "dev",
    ],
)
def test_every_command_has_help(command):
    result = runner.invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    listed = runner.invoke(cli.app, ["--help"]).output
    assert command in listed


def test_upload_needs_the_cloud_backend(media, tmp_path):
    from framesift.errors import PermanentError

    settings = Settings(backend=Backend.EMBEDDED, workdir=tmp_path)
    with pytest.raises(PermanentError, match="FRAMESIFT_BACKEND=gcp"):
        upload_file(settings, media["parked"], "cam", lambda sent: None)


@pytest.mark.parametrize(
    ("file_name", "collector", "reason"),
    [
        ("notes.txt", "cam", "extension '.txt' is not a video's"),
        ("drive.mp4", "cam/left", "collector 'cam/left' is a path, not one name"),
        ("drive.mp4", "..", "collector '..' is a path, not one name"),
        ("photo.png", "shop/1", "collector 'shop/1' is a path, not one name"),
        # Uploaded as "/drive.mp4", which the sampler would file under "//v_.../".
        ("drive.mp4", "", "the collector is empty"),
        ("drive.mp4", "/cam", "collector '/cam' is a path, not one name"),
        ("drive.mp4", "cam\tleft", "contains a control character"),
        ("drive.mp4", "c" * 975, "collector is 975 bytes, over 974"),
        ("DJI_0001.SRT", "drone/1", "collector 'drone/1' is a path, not one name"),
    ],
)
def test_upload_refuses_a_name_the_pipeline_would_ignore(tmp_path, file_name, collector, reason):
    from framesift.errors import PermanentError

    path = tmp_path / file_name
    path.write_bytes(b"never sent")
    settings = Settings(backend=Backend.GCP, project="p")
    with pytest.raises(PermanentError, match=re.escape(reason)):
        upload_file(settings, path, collector, lambda sent: pytest.fail("a byte was sent"))


@pytest.mark.parametrize("file_name", ["DJI_0001.SRT", "DJI_0001.srt", "DJI_0001.MP4"])
def test_upload_takes_a_drone_sidecar_beside_where_its_video_goes(file_name):
    settings = Settings(backend=Backend.GCP, project="p")
    path = Path(file_name)
    assert upload_refusal(path, "drone", settings.raw_prefix, settings.images_prefix) is None
    name = upload_name(path, "drone", settings.raw_prefix, settings.images_prefix)
    assert name == f"{settings.raw_prefix}drone/{file_name}"


@pytest.mark.parametrize(
    ("file_name", "collector", "reason"),
    [
        ("notes.txt", "local", "extension '.txt' is not a video's"),
        ("drive.mp4", "", "the collector is empty"),
    ],
)
def test_run_on_a_refused_input_exits_non_zero_with_the_reason_on_screen(
    media, tmp_path, file_name, collector, reason
):
    refused = tmp_path / file_name
    refused.write_bytes(media["parked"].read_bytes() if file_name.endswith(".mp4") else b"notes")
    args = ["run", str(refused), "--workdir", str(tmp_path / "work"), "--collector", collector]

    result = runner.invoke(cli.app, args)

    assert result.exit_code == 1
    assert reason in result.stderr and file_name in result.stderr
    assert not (tmp_path / "work" / "buckets" / "framesift-raw").exists()  # nothing uploaded


def test_export_warehouse_and_bench_commands(media, tmp_path):
    _run(tmp_path, media["parked"])
    env = {"FRAMESIFT_BACKEND": "embedded", "FRAMESIFT_WORKDIR": str(tmp_path / "work")}
    result = runner.invoke(cli.app, ["export-warehouse", "--full"], env=env)
    assert result.exit_code == 0, result.output
    assert "frames" in result.output and "0 documents rejected" in result.output

    bench = runner.invoke(cli.app, ["bench", "export", "--", "--sizes", "300"])
    assert bench.exit_code == 0, bench.output
    unknown = runner.invoke(cli.app, ["bench", "nope"])
    assert unknown.exit_code != 0 and "no benchmark 'nope'" in str(unknown.exception)
    # Several in one command are all checked before any runs.
    listed = runner.invoke(cli.app, ["bench", "export,nope", "--", "--sizes", "300"])
    assert listed.exit_code != 0 and "no benchmark 'nope'" in str(listed.exception)
    assert listed.output == ""


def test_run_lists_videos_and_photos_by_name_and_every_frame_is_decided(media, photos, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for path in (media["three_shots"], photos["photo"], photos["copy"]):
        (inputs / path.name).write_bytes(path.read_bytes())
    summary = _run(tmp_path, inputs)

    assert [v["source"] for v in summary["videos"]] == ["local/three_shots.mp4"]
    # The same bytes twice: whichever came first is kept, the other is its exact duplicate.
    assert sorted(p["source"] for p in summary["photos"]) == [
        "images/local/photo-copy.jpg",
        "images/local/photo.jpg",
    ]
    assert sorted(p["decision"] for p in summary["photos"]) == ["exact_duplicate", "kept"]
    decided = summary["kept"] + sum(summary["dropped"].values())
    assert decided == summary["frames_sampled"] + len(summary["photos"])
