"""The warehouse: its tables (:mod:`.schemas`, for BigQuery, DuckDB and the infra) and the
analysts' views (:mod:`.views`, SQL files in ``sql/`` that BigQuery and DuckDB both read)."""
