"""Ingest: readers, validation with row-level reports, and the load pipelines."""
