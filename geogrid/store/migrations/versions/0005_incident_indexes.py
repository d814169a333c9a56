"""incident indexes for fast bulk loads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A large load rebuilds every secondary index of ``incidents`` inside its transaction (bulk mode), so
each index costs load time. Two indexes served no query of geogrid or its API and are dropped
(measured on 1 M rows, ``bench/ingest.py`` data, 2 shared cores):

* ``ix_incidents_grid_id`` (0.6–0.8 s to build): nothing filters or groups incidents by ``grid_id``
  in SQL (analyses read the rows and group in pandas). Only an ad-hoc ``?grid_id=`` property filter
  of the features API used it (~15 ms → 215–320 ms, a parallel scan). Without it the
  ``UPDATE … SET grid_id`` of a plan activation maintains one index less.
* ``ix_incidents_h3`` (0.55–0.7 s): nothing looks incidents up by cell. Its one user was the
  unfiltered per-cell count of the features API (roles without raw access), read in cell order from
  the index instead of a hashed scan; through ``api.items`` (count, cell polygons, page) that request
  took 1.15–1.32 s with it and 1.15–1.26 s without. With a category or time filter the category and
  occurred_at indexes serve it either way; tiles count cells under a bbox through the GiST.

Kept, because queries depend on them: ``category`` (a rare category through the features API:
~13 ms with it, ~236 ms without), ``occurred_at`` (min/max for the collection extent and the web
map's time range: < 1 ms against a full scan; BRIN would build in 0.14 s instead of 0.34 s but
cannot answer min/max), the GiST on ``geom`` (tiles, bbox; PostGIS ≥ 3.1 builds it sorted: 1.7 s,
against 5.2 s with ``buffering = on``) and the unique (source, external_id) (upserts).
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_incidents_grid_id", table_name="incidents")
    op.drop_index("ix_incidents_h3", table_name="incidents")


def downgrade() -> None:
    op.create_index("ix_incidents_h3", "incidents", ["h3"], unique=False)
    op.create_index("ix_incidents_grid_id", "incidents", ["grid_id"], unique=False)
