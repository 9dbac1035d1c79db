"""BigQuery through google-cloud-bigquery (``FRAMESIFT_BIGQUERY_ENDPOINT`` with anonymous
credentials for an emulator, which BigQuery's client has no variable for): the warehouse."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from framesift.ports import (
    Column,
    TableSchema,
)


def _bigquery_field(column: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        column.name,
        column.type,
        mode="REQUIRED" if column.required else "NULLABLE",
        description=column.description or None,  # type: ignore[arg-type]
    )


class BigQueryWarehouse:
    def __init__(
        self, project: str, dataset: str, location: str = "US", endpoint: str | None = None
    ) -> None:
        if endpoint:
            self._client = bigquery.Client(
                project=project,
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=endpoint),
            )
        else:
            self._client = bigquery.Client(project=project)
        self._project = project
        self.dataset = dataset
        self._location = location

    def _table_id(self, name: str) -> str:
        return f"{self._project}.{self.dataset}.{name}"

    def create_dataset(self) -> None:
        """Create the dataset if missing: what the infra does when deployed, for the dev stack
        and the tests. Never called by a function: creating a dataset needs
        ``bigquery.datasets.create`` even when it exists, which the exporter's account (data
        editor on its dataset) does not hold."""
        dataset = bigquery.Dataset(f"{self._project}.{self.dataset}")
        dataset.location = self._location
        self._client.create_dataset(dataset, exists_ok=True)

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        for schema in schemas:
            table = bigquery.Table(
                self._table_id(schema.name), schema=[_bigquery_field(c) for c in schema.columns]
            )
            if schema.partition_by:
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=schema.partition_by
                )
            if schema.cluster_by:
                table.clustering_fields = list(schema.cluster_by)
            existing = self._client.create_table(table, exists_ok=True)
            # A table made by an older version lacks the columns added since: add them (an
            # additive change, which BigQuery allows in place; the rows get NULL).
            have = {field.name for field in existing.schema}
            missing = [_bigquery_field(c) for c in schema.columns if c.name not in have]
            if missing:
                existing.schema = [*existing.schema, *missing]
                self._client.update_table(existing, ["schema"])

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        staging_id = self._table_id(f"_staging_{schema.name}_{uuid.uuid4().hex[:12]}")
        fields = [_bigquery_field(c) for c in schema.columns]
        load = self._client.load_table_from_json(
            [{c.name: _jsonable(row.get(c.name)) for c in schema.columns} for row in rows],
            staging_id,
            job_config=bigquery.LoadJobConfig(
                schema=fields, write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE
            ),
        )
        load.result()
        names = [c.name for c in schema.columns]
        try:
            self._client.query(
                f"""
                MERGE `{self._table_id(schema.name)}` AS t
                USING (SELECT * FROM `{staging_id}`
                       QUALIFY ROW_NUMBER() OVER (PARTITION BY `{schema.key}`
                                                  ORDER BY updated_at DESC) = 1) AS s
                ON t.`{schema.key}` = s.`{schema.key}`
                WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
                    {", ".join(f"`{n}` = s.`{n}`" for n in names)}
                WHEN NOT MATCHED THEN INSERT ({", ".join(f"`{n}`" for n in names)})
                    VALUES ({", ".join(f"s.`{n}`" for n in names)})
                """
            ).result()
        finally:
            self._client.delete_table(staging_id, not_found_ok=True)

    def ensure_views(self, views: Mapping[str, str]) -> None:
        for name, sql in views.items():
            view = bigquery.Table(self._table_id(name))
            view.view_query = sql.replace("{dataset}", f"`{self._project}.{self.dataset}`")
            try:
                existing = self._client.get_table(view.reference)
            except gexc.NotFound:
                self._client.create_table(view, exists_ok=True)
                continue
            if existing.view_query != view.view_query:
                existing.view_query = view.view_query
                self._client.update_table(existing, ["view_query"])

    def query(self, sql: str) -> list[dict[str, Any]]:
        job = self._client.query(sql.replace("{dataset}", f"`{self._project}.{self.dataset}`"))
        return [dict(row.items()) for row in job.result()]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
