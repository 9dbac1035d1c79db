"""Embedded adapters: the whole pipeline on one machine with no cloud account and no Java.

Buckets are folders (:mod:`.folder`), documents live in SQLite (:mod:`.sqlite`), the warehouse
is a DuckDB file (:mod:`.duckdb`) and Pub/Sub is an in-process queue (:mod:`.inprocess`).
"""
