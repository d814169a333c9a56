"""The generated demo city: a Hefei-like jurisdiction with grids, posts, staff and incidents.

Pure functions: :func:`generate_city` returns frames in EPSG:4326 and writes nothing;
:func:`generate_incidents_csv` streams a large incident file for ingest benchmarks.
"""
from geogrid.generate.city import City, generate_city
from geogrid.generate.rhythms import CATEGORY_EN, CATEGORY_SHARES
from geogrid.generate.stream import generate_incidents_csv

__all__ = ["CATEGORY_EN", "CATEGORY_SHARES", "City", "generate_city", "generate_incidents_csv"]
