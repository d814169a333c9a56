"""The only ring that speaks SQL: models, migrations, bulk loads, reads, plans, tiles and lookups."""
from geogrid.store.engine import make_engine

__all__ = ["make_engine"]
