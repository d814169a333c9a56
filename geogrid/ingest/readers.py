"""Readers for the formats geogrid ingests, all yielding bounded chunks of records.

Every chunk is a DataFrame with the file's own columns plus ``__row`` (1-based record number in the
file, used in reject reports) and, for vector formats, ``geometry`` (shapely) with the file's CRS
in ``chunk.attrs['crs']``.
"""
from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from geogrid.errors import InputError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".kml", ".fgb")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
ROW = "__row"
ARROW_BLOCK_BYTES = 16 << 20  # bytes Arrow parses at a time (in parallel)


def file_format(path: str | Path) -> str:
    """'csv', 'vector' or 'parquet' from the file name; InputError for anything else."""
    name = str(path).lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(VECTOR_SUFFIXES):
        return "vector"
    raise InputError(
        f"{path}: unsupported file type; geogrid reads CSV, GeoJSON, GeoPackage, zipped Shapefile "
        "(.zip) and GeoParquet"
    )


def read_chunks(path: str | Path, chunk_rows: int = 200_000, layer: str | None = None) -> Iterator[pd.DataFrame]:
    """Yield the records of ``path`` in chunks of at most ``chunk_rows`` rows."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    fmt = file_format(path)
    if fmt == "csv":
        yield from _csv(path, chunk_rows)
    elif fmt == "parquet":
        yield from _parquet(path, chunk_rows)
    else:
        yield from _vector(path, chunk_rows, layer)


def _csv(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """CSV records as text columns (empty fields are missing), via Arrow's multi-threaded parser.

    pyarrow reads a large CSV several times faster than pandas' C parser. Anything it refuses (bad
    UTF-8, a row with too few or too many fields) is handed to the pandas reader, from the first
    record not yet yielded, so that its per-row behaviour and error messages stay the same.
    """
    sep = "\t" if str(path).lower().endswith(".tsv") else ","
    done = 0
    try:
        for chunk in _csv_arrow(path, sep, chunk_rows):
            yield chunk
            done += len(chunk)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error):
        pass
    yield from _csv_pandas(path, sep, chunk_rows, skip=done)


def _csv_arrow(path: Path, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.csv as pacsv

    header = _csv_header(path, sep)
    if len(set(header)) != len(header):  # pandas renames repeated names (a, a.1): let it
        raise pa.ArrowInvalid("repeated column names")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=ARROW_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=True),
    )
    start, pending, held = 1, [], 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield _csv_frame(table.slice(0, chunk_rows), start)
            start += chunk_rows
            rest = table.slice(chunk_rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield _csv_frame(pa.Table.from_batches(pending), start)


def _csv_header(path: Path, sep: str) -> list[str]:
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f, delimiter=sep), [])


def _csv_frame(table: pa.Table, start: int) -> pd.DataFrame:
    df = table.to_pandas()
    df[ROW] = np.arange(start, start + len(df))
    return df


def _csv_pandas(path: Path, sep: str, chunk_rows: int, skip: int = 0) -> Iterator[pd.DataFrame]:
    start = 1
    try:
        reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                             chunksize=chunk_rows, encoding="utf-8-sig")
        for chunk in reader:
            chunk[ROW] = np.arange(start, start + len(chunk))
            start += len(chunk)
            if start - 1 <= skip:  # already yielded by the Arrow reader
                continue
            if chunk[ROW].iloc[0] <= skip:
                chunk = chunk[chunk[ROW] > skip]
            yield chunk
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text near byte {e.start}; re-save the file as UTF-8") from e
    except pd.errors.ParserError as e:
        raise InputError(f"{path}: malformed CSV ({e})") from e


def _vector_path(path: Path) -> str:
    if str(path).lower().endswith(".zip"):
        return f"/vsizip/{path}"
    return str(path)


def _vector(path: Path, chunk_rows: int, layer: str | None) -> Iterator[pd.DataFrame]:
    import pyogrio

    src = _vector_path(path)
    try:
        info = pyogrio.read_info(src, layer=layer)
    except Exception as e:  # pyogrio raises DataSourceError / DataLayerError subclasses
        raise InputError(f"{path}: cannot open as a vector file ({e})") from e
    total = int(info["features"]) if info["features"] >= 0 else None
    crs = info["crs"]
    start = 0
    while total is None or start < total:
        gdf = pyogrio.read_dataframe(src, layer=layer, skip_features=start, max_features=chunk_rows)
        if len(gdf) == 0:
            break
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df = df.astype({c: str for c in df.columns if df[c].dtype == object})
        df["geometry"] = gdf.geometry.to_numpy()
        df[ROW] = np.arange(start + 1, start + len(gdf) + 1)
        df.attrs["crs"] = crs
        start += len(gdf)
        yield df


def _parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import json

    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.schema_arrow.metadata or {}
    geo = json.loads(meta[b"geo"]) if b"geo" in meta else None
    geom_col, crs = None, None
    if geo:
        geom_col = geo.get("primary_column", "geometry")
        crs_info = geo["columns"][geom_col].get("crs")
        crs = "EPSG:4326" if crs_info is None else _projjson_to_crs(crs_info)
    start = 1
    for batch in pf.iter_batches(batch_size=chunk_rows):
        df = batch.to_pandas()
        if geom_col:
            df["geometry"] = shapely.from_wkb(df.pop(geom_col).to_numpy())
            df.attrs["crs"] = crs
        df[ROW] = np.arange(start, start + len(df))
        start += len(df)
        yield df


def _projjson_to_crs(crs_info) -> str:
    from pyproj import CRS

    c = CRS.from_json_dict(crs_info) if isinstance(crs_info, dict) else CRS.from_user_input(crs_info)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_wkt()
