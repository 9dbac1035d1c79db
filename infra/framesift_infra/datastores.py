"""The document store (Firestore) and the warehouse (a BigQuery dataset and its tables)."""

from __future__ import annotations

import json

import pulumi_gcp as gcp

from framesift.bookkeeping import EXPIRES
from framesift.topology import Collections
from framesift.warehouse.schemas import ALL_TABLES
from framesift_infra.config import StackConfig
from framesift_infra.stack import Stack


def create_warehouse(stack: Stack, config: StackConfig) -> gcp.bigquery.Dataset:
    dataset = stack.add(
        gcp.bigquery.Dataset(
            "warehouse",
            opts=stack.opts(),
            dataset_id="framesift",
            location=config.region,
            labels=config.labels,
        )
    )
    for schema in ALL_TABLES:
        stack.add(
            gcp.bigquery.Table(
                f"table-{schema.name}",
                opts=stack.opts(),
                dataset_id=dataset.dataset_id,
                table_id=schema.name,
                deletion_protection=True,
                labels=config.labels,
                schema=json.dumps(
                    [
                        {
                            "name": c.name,
                            "type": c.type,
                            "mode": "REQUIRED" if c.required else "NULLABLE",
                            "description": c.description,
                        }
                        for c in schema.columns
                    ]
                ),
                time_partitioning=(
                    {"type": "DAY", "field": schema.partition_by} if schema.partition_by else None
                ),
                clusterings=list(schema.cluster_by) or None,
            )
        )
    return dataset


def create_firestore(stack: Stack, config: StackConfig) -> None:
    database = stack.add(
        gcp.firestore.Database(
            "documents",
            opts=stack.opts(),
            name="(default)",
            location_id=config.region,
            type="FIRESTORE_NATIVE",
            delete_protection_state="DELETE_PROTECTION_ENABLED",
        )
    )
    # The queries are single-field (equality on one field, a range on updated_at), which
    # Firestore indexes by itself: no composite index is needed. Large opaque fields are taken
    # out of indexing instead, so writing them costs no index entries.
    for collection, field_name in (
        ("phash_buckets", "hashes"),
        ("annotations", "boxes"),
        ("dead_letters", "data"),
    ):
        stack.add(
            gcp.firestore.Field(
                f"no-index-{collection}-{field_name}",
                opts=stack.opts(),
                database=database.name,
                collection=collection,
                field=field_name,
                index_config={},
            )
        )
    # A tiered dedup index's generations are read for one period only; Firestore's TTL policy
    # deletes their documents after the time they carry (framesift.bookkeeping.GenerationNode).
    # Unindexed, as Google advises for a TTL timestamp no query uses (it would hotspot).
    stack.add(
        gcp.firestore.Field(
            f"ttl-{Collections.PHASH_BUCKETS}-{EXPIRES}",
            opts=stack.opts(),
            database=database.name,
            collection=Collections.PHASH_BUCKETS,
            field=EXPIRES,
            index_config={},
            ttl_config={},
        )
    )
