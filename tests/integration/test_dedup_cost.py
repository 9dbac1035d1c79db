"""Dedup's index reads and writes per video, counted by its decisions: on each frame, summed per
video in the warehouse, in `framesift run`'s summary and `framesift report`; a redelivered batch
changes none of it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from framesift import cli
from framesift.embedded import EmbeddedPipeline
from framesift.runreport import run_report
from framesift.topology import Topics

runner = CliRunner()


def test_index_reads_and_writes_are_counted_per_video_once(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    summary = pipeline.run([media["parked"], media["three_shots"]], collector="cam")
    documents, warehouse = pipeline.adapters.documents, pipeline.adapters.warehouse

    def counted() -> dict[str, tuple[int, int]]:
        per_video: dict[str, tuple[int, int]] = {}
        for video in summary.sources:
            frames = documents.where("frames", "video_doc_id", video)
            assert frames and all(f["dedup_index_reads"] > 0 for f in frames)
            per_video[video] = (
                sum(f["dedup_index_reads"] for f in frames),
                sum(f["dedup_index_writes"] for f in frames),
            )
        return per_video

    before = counted()
    report = run_report(summary, warehouse, embedded_settings.workdir)
    assert {v.video: (v.index_reads, v.index_writes) for v in report.videos} == before
    assert report.dedup_index_reads == sum(reads for reads, _ in before.values())
    assert report.dedup_index_writes == sum(writes for _, writes in before.values())
    assert 0 < report.video_hours < 0.01  # two clips of a few seconds

    for message in list(pipeline.publisher.published[Topics.FRAMES_SAMPLED]):
        for _ in range(2):
            pipeline.publisher.publish(Topics.FRAMES_SAMPLED, message.data, message.attributes)
    pipeline.publisher.publish(Topics.EXPORT_REQUESTS, b"{}")
    pipeline.publisher.drain()

    assert counted() == before
    again = run_report(summary, warehouse, embedded_settings.workdir)
    assert (again.dedup_index_reads, again.dedup_index_writes) == (
        report.dedup_index_reads,
        report.dedup_index_writes,
    )


def test_run_and_report_show_the_index_cost(media, tmp_path):
    work = str(tmp_path / "work")
    result = runner.invoke(cli.app, ["run", str(media["parked"]), "--workdir", work, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    [video] = summary["videos"]
    assert summary["dedup_index_reads"] == video["index_reads"] > 0
    assert summary["dedup_index_writes"] == video["index_writes"] > 0

    table = runner.invoke(cli.app, ["run", str(media["parked"]), "--workdir", work])
    assert table.exit_code == 0, table.output
    [second_row] = [line for line in table.output.splitlines() if "dedup index reads" in line]
    assert "per video-hour" in second_row
    second = int(second_row.split("│")[2].split()[0])
    report = runner.invoke(
        cli.app, ["report", "--workdir", work, "--out", str(tmp_path / "report")]
    )
    assert report.exit_code == 0, report.output
    # The report covers both runs' videos (the same file uploaded twice).
    assert f"dedup index: {summary['dedup_index_reads'] + second} documents read" in report.output
    html = (tmp_path / "report" / "index.html").read_text()
    assert f"dedup index: {video['index_reads']} documents read" in html
