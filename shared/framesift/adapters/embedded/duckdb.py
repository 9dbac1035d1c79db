"""The warehouse as a DuckDB file, with the BigQuery tables' names, columns and MERGE."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from framesift.adapters.embedded.sqlite import json_default
from framesift.logs import get_logger
from framesift.ports import TableSchema

log = get_logger(__name__)


_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "JSON",
}


class DuckDbWarehouse:
    """The warehouse as a DuckDB file, with the BigQuery tables' names, columns and MERGE."""

    def __init__(self, path: Path, dataset: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self.dataset = dataset

    def _connect(self) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(str(self._path))
        # Set after connecting: duckdb 2.0 rejects TimeZone in the connect config without icu.
        connection.execute("SET TimeZone = 'UTC'")
        return connection

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        with self._connect() as db:
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.dataset}"')
            for schema in schemas:
                columns = ", ".join(
                    f'"{c.name}" {_DUCKDB_TYPES[c.type]}{" NOT NULL" if c.required else ""}'
                    for c in schema.columns
                )
                db.execute(
                    f'CREATE TABLE IF NOT EXISTS "{self.dataset}"."{schema.name}" ({columns})'
                )
                # A table made by an older version lacks the columns added since.
                for column in schema.columns:
                    if not column.required:
                        db.execute(
                            f'ALTER TABLE "{self.dataset}"."{schema.name}" ADD COLUMN IF NOT'
                            f' EXISTS "{column.name}" {_DUCKDB_TYPES[column.type]}'
                        )

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        names = [c.name for c in schema.columns]
        quoted = ", ".join(f'"{n}"' for n in names)
        target = f'"{self.dataset}"."{schema.name}"'
        source_values = ", ".join(f's."{n}"' for n in names)
        columns = ", ".join(f"'{c.name}': '{_DUCKDB_TYPES[c.type]}'" for c in schema.columns)
        with tempfile.TemporaryDirectory() as folder, self._connect() as db:
            # A load job's equivalent: the rows as a JSON Lines file read in one statement
            # (executemany inserts row by row, hundreds of times slower).
            staged = Path(folder) / "rows.jsonl"
            with staged.open("w") as out:
                for row in rows:
                    out.write(json.dumps({n: row.get(n) for n in names}, default=json_default))
                    out.write("\n")
            db.execute(
                f"CREATE TEMP TABLE staging AS SELECT {quoted} FROM read_json("
                f"'{staged}', format = 'newline_delimited', columns = {{{columns}}})"
            )
            # Several versions of one document in a batch: only the newest is merged.
            db.execute(
                f"""
                MERGE INTO {target} AS t
                USING (SELECT * FROM staging
                       QUALIFY row_number() OVER (PARTITION BY "{schema.key}"
                                                  ORDER BY updated_at DESC) = 1) AS s
                ON t."{schema.key}" = s."{schema.key}"
                WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
                    {", ".join(f'"{n}" = s."{n}"' for n in names)}
                WHEN NOT MATCHED THEN INSERT ({quoted}) VALUES ({source_values})
                """
            )

    def ensure_views(self, views: Mapping[str, str]) -> None:
        with self._connect() as db:
            for name, sql in views.items():
                body = sql.replace("{dataset}", f'"{self.dataset}"')
                db.execute(f'CREATE OR REPLACE VIEW "{self.dataset}"."{name}" AS {body}')

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            cursor = db.execute(sql.replace("{dataset}", f'"{self.dataset}"'))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
