"""Exporter benchmark: documents per second from the document store into the warehouse.

    .venv/bin/python benchmarks/export.py                          # SQLite -> DuckDB
    eval "$(.venv/bin/framesift dev up | grep ^export)"
    .venv/bin/python benchmarks/export.py --emulated               # Firestore -> BigQuery

For each size it writes that many frame documents in one batch, then times a full export and,
in the same run, its two halves alone as baselines: reading the documents (the store's limit)
and upserting the rows (the warehouse's limit). It counts the warehouse jobs of the export (on
BigQuery, every load and query job), which must not grow with the number of documents.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.bulk

from framesift import bootstrap
from framesift.bootstrap import build_adapters
from framesift.config import Backend, Settings
from framesift.stages.exporter import row_of
from framesift.warehouse.schemas import ALL_TABLES, FRAMES_TABLE
from tests.support.bulk import write_frame_documents
from tests.support.stack import with_dataset


def count_jobs(warehouse: Any) -> dict[str, int]:
    """Wrap a BigQuery client's job-starting methods (or DuckDB's upsert) with counters."""
    counts = {"jobs": 0}
    client = getattr(warehouse, "_client", None)
    if client is not None and hasattr(client, "load_table_from_json"):
        for name in ("load_table_from_json", "query"):
            original = getattr(client, name)

            def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                counts["jobs"] += 1
                return _original(*args, **kwargs)

            setattr(client, name, counted)
    else:
        original = warehouse.upsert

        def counted_upsert(schema: Any, rows: Any) -> Any:
            counts["jobs"] += 2 if rows else 0  # what a load and a MERGE would be
            return original(schema, rows)

        warehouse.upsert = counted_upsert
    return counts


def measure(settings: Settings, size: int) -> tuple[float, float, float, int]:
    video = f"v_bench_{uuid.uuid4().hex[:8]}"
    write_frame_documents(settings, video, size)
    adapters = with_dataset(build_adapters(settings))
    adapters.warehouse.ensure_tables(ALL_TABLES)

    start = time.perf_counter()
    docs = list(adapters.documents.changed_since("frames", None))
    read_s = time.perf_counter() - start
    rows = [row_of(FRAMES_TABLE, doc) for doc in docs]
    start = time.perf_counter()
    adapters.warehouse.upsert(FRAMES_TABLE, rows)
    upsert_s = time.perf_counter() - start

    jobs = count_jobs(adapters.warehouse)
    start = time.perf_counter()
    result = bootstrap.exporter(adapters, settings).run(full=True)
    export_s = time.perf_counter() - start
    exported = sum(result.documents.values())
    return exported / export_s, len(docs) / read_s, len(rows) / upsert_s, jobs["jobs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--emulated", action="store_true", help="Firestore and BigQuery emulators")
    args = parser.parse_args()
    print(
        "| documents | stack | export docs/s | read docs/s | upsert rows/s | export/read |"
        " jobs per run |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            if args.emulated:
                settings = Settings(
                    backend=Backend.GCP,
                    project=os.environ.get("FRAMESIFT_PROJECT", "framesift-local"),
                    bigquery_dataset=f"bench_{uuid.uuid4().hex[:8]}",
                    bigquery_endpoint=os.environ["FRAMESIFT_BIGQUERY_ENDPOINT"],
                )
                stack = "Firestore emulator -> BigQuery emulator"
            else:
                settings = Settings(backend=Backend.EMBEDDED, workdir=Path(folder))
                stack = "SQLite -> DuckDB"
            export, read, upsert, jobs = measure(settings, size)
        print(
            f"| {size:,} | {stack} | {export:,.0f} | {read:,.0f} | {upsert:,.0f} |"
            f" {export / read:.2f} | {jobs} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
