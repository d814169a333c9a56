"""Ingest incidents: read in chunks, validate, reproject, H3-index, locate the grid, COPY, upsert.

The whole load runs in one transaction: a load that fails leaves the database as it was. Re-loading
the same file is idempotent (upsert on source + external_id; changed rows are updated, and rows
identical to the stored ones are not written at all). Memory is bounded by the chunk size (two chunks
at most: one is encoded and sent by ``CopyStream``'s thread while the next is validated), plus 16
bytes a row for the duplicate-id check (``geogrid.ingest.duplicates``).

Bulk mode (``bulk=None``: automatic) is for loads that are large next to the table: at least
``BULK_MIN_ROWS`` rows and ``BULK_FRACTION`` of the rows already stored. The table's secondary
indexes are dropped and rebuilt inside the same transaction (see ``geogrid.store.incidents``), and
the rows of a source not loaded before are COPY'd straight into ``incidents``. It holds an ACCESS
EXCLUSIVE lock on ``incidents`` until the load ends: readers wait. ``bulk=False`` never does that.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, text

from geogrid.assign import GridIndex
from geogrid.categories import CategoryMap
from geogrid.cells import points_to_cells
from geogrid.crs import in_china, parse_crs, to_wgs84
from geogrid.errors import InputError
from geogrid.ingest.cell_lookup import CellGrids
from geogrid.ingest.duplicates import DuplicateIds
from geogrid.ingest.fields import FieldMap
from geogrid.ingest.readers import ROW, read_chunks
from geogrid.ingest.report import ChunkRejects, RejectLog
from geogrid.store import incidents as store
from geogrid.store.engine import transaction
from geogrid.store.grids import read_grids

PRIORITY_WORDS = {"urgent": "urgent", "紧急": "urgent", "high": "urgent", "1": "urgent", "p1": "urgent",
                  "normal": "normal", "一般": "normal", "普通": "normal", "low": "normal", "2": "normal", "3": "normal"}
ORIGIN_WORDS = {"reported": "reported", "report": "reported", "call": "reported", "110": "reported",
                "群众报警": "reported", "报警": "reported", "discovered": "discovered", "patrol": "discovered",
                "巡逻发现": "discovered", "主动发现": "discovered"}


BULK_MIN_ROWS = 50_000
BULK_FRACTION = 0.2


class IngestAborted(InputError):
    """A strict load met rejected rows; nothing was written."""

    def __init__(self, message: str, log: RejectLog):
        super().__init__(message)
        self.log = log


@dataclass
class IngestResult:
    """What a load did."""

    rows_read: int = 0
    rows_loaded: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    log: RejectLog | None = None
    report_path: Path | None = None
    extra: dict = field(default_factory=dict)


def load_incidents(
    bind: Engine | Connection,
    path: str | Path,
    fields: FieldMap,
    *,
    source: str,
    crs: str = "EPSG:4326",
    tz: str = "Asia/Shanghai",
    category_map: CategoryMap | None = None,
    strict: bool = False,
    h3_res: int = 9,
    chunk_rows: int = 100_000,
    now: datetime | None = None,
    progress: bool = False,
    defaults: dict | None = None,
    bulk: bool | None = None,
) -> IngestResult:
    """Load an incident file into ``incidents``; see the module docstring for guarantees.

    ``bulk``: None decides by the size of the load (module docstring), True always drops and rebuilds
    the indexes, False never (concurrent readers are then never blocked).
    """
    spec = parse_crs(crs)
    cmap = category_map or CategoryMap.default()
    now = now or datetime.now(timezone.utc)
    log = RejectLog(path)
    result = IngestResult(log=log)
    started = datetime.now(timezone.utc)
    default_category = (defaults or {}).get("category", "other")
    with transaction(bind) as conn:
        return _load(conn, path, fields, source, spec, tz, cmap, strict, h3_res, chunk_rows, now, progress, log,
                     result, started, default_category, bulk)


def _load(conn, path, fields, source, spec, tz, cmap, strict, h3_res, chunk_rows, now, progress, log, result, started,
          default_category, bulk=None):
    stored_res = store.h3_resolution(conn)
    if stored_res is not None and stored_res != h3_res:
        raise InputError(f"the store indexes incidents at H3 resolution {stored_res}; cannot load at {h3_res}")
    grids = read_grids(conn)
    index = GridIndex(grids, key="id") if len(grids) else None
    cell_grids = CellGrids(index) if index is not None else None
    dups = DuplicateIds()
    bar = _progress(path, progress)
    stream, direct, dropped = None, False, None
    try:
        for chunk in read_chunks(path, chunk_rows):
            _check_columns(chunk, fields, path)
            result.rows_read += len(chunk)
            clean = _validate(chunk, fields, spec, tz, cmap, strict, index, now, log, default_category, h3_res,
                              cell_grids)
            clean = dups.filter(clean)
            if stream is None:  # the mode is chosen on the first chunk, before anything is written
                if _wants_bulk(conn, bulk, len(clean)):
                    store.lock_writers(conn)  # no other load may add this source's rows after the check
                    direct = not store.source_has_rows(conn, source)
                if direct:
                    dropped = store.drop_indexes(conn)
                else:
                    store.create_stage(conn)
                stream = store.open_stream(conn, direct)
            if len(clean):
                stream.write(store.stage_columns(clean, source if direct else None))
            if bar is not None:
                bar.update(len(chunk))
    except BaseException as e:
        if stream is not None:
            stream.abort(e)
        raise
    if bar is not None:
        bar.close()
    if stream is None:  # no records at all
        store.create_stage(conn)
        loaded = 0
    else:
        loaded = stream.close()
    if direct:
        store.rebuild_constraints(conn, dropped)  # the id look-up below uses the unique index
    extra = dups.finish(lambda ids: store.present(conn, ids, source, direct))
    if len(extra):  # rows whose id only shared a hash with an earlier one
        more = store.open_stream(conn, direct)
        more.write(store.stage_columns(extra, source if direct else None))
        loaded += more.close()
    _log_duplicates(log, dups.duplicates)
    result.rejected = len(log)
    result.report_path = log.write()
    if strict and len(log):
        raise IngestAborted(
            f"{path}: {len(log)} rows rejected and --strict is set; nothing was loaded "
            f"(see {result.report_path})", log)
    if direct:
        store.rebuild_indexes(conn, dropped)
        result.inserted, result.updated = loaded, 0
        result.extra["mode"] = "bulk (direct COPY)"
    else:
        result.inserted, result.updated = _upsert(conn, source, bulk, loaded, result)
    result.rows_loaded = result.rows_read - result.rejected
    store.set_h3_resolution(conn, h3_res)
    conn.execute(text(
        "INSERT INTO ingest_runs (kind, source, path, rows_read, rows_loaded, rows_rejected, inserted, updated, started_at) "
        "VALUES ('incidents', :s, :p, :r, :l, :j, :i, :u, :t)"),
        {"s": source, "p": str(path), "r": result.rows_read, "l": result.rows_loaded, "j": result.rejected,
         "i": result.inserted, "u": result.updated, "t": started})
    return result


def _wants_bulk(conn, bulk: bool | None, rows: int) -> bool:
    """Bulk mode for ``rows`` (a lower bound of the load's size) — see the module docstring."""
    if bulk is not None:
        return bulk
    return rows >= BULK_MIN_ROWS and rows >= BULK_FRACTION * store.table_rows(conn)


def _upsert(conn, source: str, bulk: bool | None, staged: int, result: IngestResult) -> tuple[int, int]:
    """Stage → incidents: unchanged rows dropped first, then an upsert, or bulk mode's update + insert."""
    if staged and store.source_has_rows(conn, source):
        staged -= store.drop_unchanged(conn, source)
    if staged and _wants_bulk(conn, bulk, staged):
        dropped = store.drop_indexes(conn)
        counts = store.apply_stage_bulk(conn, source)
        store.rebuild_indexes(conn, dropped)
        result.extra["mode"] = "bulk (stage)"
        return counts
    result.extra["mode"] = "upsert"
    if not staged:
        return 0, 0
    return store.upsert_from_stage(conn, source)


def _log_duplicates(log: RejectLog, duplicates: list[tuple[int, str, int]]) -> None:
    by_first: dict[tuple[str, int], list[int]] = {}
    for row, ext, first in duplicates:
        by_first.setdefault((ext, first), []).append(row)
    for (ext, first), rows in by_first.items():
        log.reject(np.array(rows), "id", f"duplicate id {ext!r} inside the file (first at row {first})", [ext] * len(rows))


def _progress(path, on: bool):
    if not on:
        return None
    from tqdm import tqdm

    return tqdm(desc=f"ingest {Path(path).name}", unit=" rows", unit_scale=True)


def _check_columns(chunk: pd.DataFrame, f: FieldMap, path) -> None:
    has_geom = "geometry" in chunk
    need = {"time": f.time}
    if not has_geom:
        need.update(lon=f.lon, lat=f.lat)
    missing_opt = [k for k, v in need.items() if v is None]
    if missing_opt:
        raise InputError(f"{path}: say which column holds {', '.join(missing_opt)} (--{' --'.join(missing_opt)})")
    named = {k: v for k, v in vars(f).items() if v is not None and k in ("id", "lon", "lat", "time", "category", "priority", "origin")}
    if has_geom:
        named.pop("lon", None), named.pop("lat", None)
    absent = {k: v for k, v in named.items() if v not in chunk.columns}
    if absent:
        cols = ", ".join(c for c in chunk.columns if c != ROW)
        raise InputError(f"{path}: no column {', '.join(repr(v) for v in absent.values())} "
                         f"(for {', '.join(absent)}); the file has: {cols}")


def _numbers(s: pd.Series) -> np.ndarray:
    """Numbers from text; NaN where missing or not a number."""
    if pd.api.types.is_string_dtype(s.dtype):
        try:  # Arrow parses a column of valid numbers several times faster than pandas
            return pc.cast(pa.array(s, type=pa.string(), from_pandas=True), pa.float64()).to_numpy(
                zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # some value is not a number: pandas says which
            pass
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _validate(chunk, f, spec, tz, cmap, strict, index, now, log, default_category="other", h3_res=None,
              cell_grids=None) -> pd.DataFrame:
    rows = chunk[ROW].to_numpy()
    reject = ChunkRejects(log, rows)
    bad = reject.bad  # updated in place by reject()

    # identifiers: given, or a content hash (so that re-loads of an id-less file stay idempotent)
    if f.id:
        ext = chunk[f.id].astype("string").str.strip()
        reject(ext.isna().to_numpy() | (ext == "").fillna(True).to_numpy(), "id", "missing id")
        ext = ext.fillna("")  # stays in Arrow: no Python str per row (COPY encodes Arrow buffers)
    else:
        ext = None

    # coordinates
    if "geometry" in chunk:
        geoms = chunk["geometry"].to_numpy()
        import shapely

        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        reject(empty, "geometry", "missing geometry")
        not_point = ~empty & (shapely.get_type_id(geoms) != 0)
        reject(not_point, "geometry", "not a point")
        x = np.where(bad, np.nan, shapely.get_x(np.where(bad, None, geoms)))
        y = np.where(bad, np.nan, shapely.get_y(np.where(bad, None, geoms)))
        raw_x = raw_y = None
        if chunk.attrs.get("crs") and spec.is_wgs84 and "4326" not in str(chunk.attrs["crs"]):
            spec = parse_crs(chunk.attrs["crs"])
    else:
        raw_x, raw_y = chunk[f.lon], chunk[f.lat]
        x, y = _numbers(raw_x), _numbers(raw_y)
        for field_, raw, num in (("lon", raw_x, x), ("lat", raw_y, y)):
            missing = raw.isna().to_numpy()
            reject(missing, field_, "missing coordinate")
            reject(~missing & ~np.isfinite(num), field_, "not a number", raw)
    geographic = spec.kind == "offset" or (spec.crs is not None and spec.crs.is_geographic)
    if geographic:
        swapped = (np.abs(y) > 90) & (np.abs(x) <= 90)
        reject(swapped, "lat", "latitude/longitude swapped (latitude out of ±90 while longitude fits)", y)
        out = (np.abs(x) > 180) | (np.abs(y) > 90)
        reject(out, "lon", "outside plausible bounds (lon ±180, lat ±90)", x)
        reject((x == 0) & (y == 0), "lon", "outside plausible bounds (0, 0 is a placeholder, not a place)", x)
        if spec.kind == "offset":
            reject(~bad & ~in_china(x, y) & ~in_china(y, x), "lon",
                   f"outside plausible bounds ({spec.name} coordinates exist only in China)", x)
    lon, lat = to_wgs84(np.where(bad, np.nan, x), np.where(bad, np.nan, y), spec)
    reject(~bad & ~(np.isfinite(lon) & np.isfinite(lat)), "lon", "coordinates do not convert to WGS-84", x)

    grid_idx = np.full(len(chunk), -1, np.int64)
    cells = None
    if h3_res is not None:  # the cells are stored anyway, and they speed up the grid look-up
        ok = ~bad
        cells = np.zeros(len(chunk), np.int64)
        cells[ok] = _cells(lon[ok], lat[ok], h3_res)
    if index is not None:
        ok = ~bad
        if cells is not None and cell_grids is not None:
            grid_idx[ok] = cell_grids.locate(lon[ok], lat[ok], cells[ok])
        else:
            grid_idx[ok] = index.locate(lon[ok], lat[ok])
        outside = ok & (grid_idx < 0)
        if outside.any() and geographic:
            # a swapped pair may well land inside the jurisdiction once swapped back
            sl, sa = to_wgs84(y[outside], x[outside], spec)
            swapped_in = np.zeros(len(chunk), bool)
            swapped_in[np.flatnonzero(outside)] = index.locate(sl, sa) >= 0
            reject(swapped_in, "lat", "latitude/longitude swapped (the swapped point lies in the jurisdiction)", y)
        outside = ~bad & (grid_idx < 0)
        if outside.any():  # the values are formatted for the rejected rows only
            shown = np.full(len(chunk), "", dtype=object)
            shown[outside] = [f"{a:.6f},{b:.6f}" for a, b in zip(x[outside], y[outside])]
            reject(outside, "lon", "outside the jurisdiction (no grid of the active plan contains it)", shown)
    else:
        reject(~bad & ((np.abs(lon) > 180) | (np.abs(lat) > 90)), "lon", "outside plausible bounds", x)

    # time
    raw_t = chunk[f.time]
    t = _parse_times(raw_t, tz)
    missing_t = raw_t.isna().to_numpy()
    reject(missing_t, "time", "missing timestamp")
    reject(~missing_t & t.isna().to_numpy(), "time", "unparseable timestamp", raw_t)
    reject(~t.isna().to_numpy() & (t > now).fillna(False).to_numpy(), "time", f"in the future (after {now:%Y-%m-%d %H:%M} UTC)", raw_t)

    # category
    if f.category:
        raw_c = chunk[f.category].fillna("")
        codes, unknown = _map_categories(cmap, raw_c)
        unknown = unknown & ~bad
        if unknown.any():
            if strict:
                reject(unknown, "category", "unknown category (--strict)", raw_c)
            else:
                for value, n in pd.Series(raw_c.to_numpy()[unknown]).value_counts().items():
                    log.warn(f"unknown category {value!r} mapped to 'other'", int(n))
    else:
        code, _ = cmap.map(pd.Series([default_category]))
        codes = _constant(str(np.asarray(code)[0]), len(chunk))

    # per distinct code, not per row (a Series.map over a million strings took ~0.5 s)
    prio_of = np.array([cmap.priority(c) for c in codes.categories], dtype=object)
    labels, at = np.unique(prio_of.astype(str), return_inverse=True)
    priority = pd.Categorical.from_codes(np.asarray(at, np.int64).ravel()[codes.codes], labels)
    if f.priority:
        p = chunk[f.priority].astype("string").str.strip().str.casefold().map(PRIORITY_WORDS)
        given = chunk[f.priority].notna().to_numpy()
        reject(given & p.isna().to_numpy(), "priority", "unknown priority (use urgent/normal or 紧急/一般)", chunk[f.priority])
        priority = p.fillna(pd.Series(np.asarray(priority), index=chunk.index)).astype(object)
    origin = _constant("reported", len(chunk))
    if f.origin:
        o = chunk[f.origin].astype("string").str.strip().str.casefold().map(ORIGIN_WORDS)
        given = chunk[f.origin].notna().to_numpy()
        reject(given & o.isna().to_numpy(), "origin", "unknown origin (use reported/discovered or 群众报警/巡逻发现)", chunk[f.origin])
        origin = o.fillna("reported").astype(object)

    keep = ~bad
    if ext is None:
        ids = _content_ids(t, lon, lat, pd.Series(np.asarray(codes), index=chunk.index))
        ext = pd.Series(ids[keep], dtype=object)
    else:
        ext = ext[keep].reset_index(drop=True)
    out = pd.DataFrame({
        "row_no": rows[keep],
        "external_id": ext,
        "category": codes[keep],
        "priority": _rows(priority, keep),
        "origin": _rows(origin, keep),
        "occurred_at": t[keep].reset_index(drop=True),
        "lon": lon[keep],
        "lat": lat[keep],
        "grid_id": np.where(grid_idx[keep] >= 0, index.keys[np.maximum(grid_idx[keep], 0)] if index else -1, -1).astype(np.int64),
    })
    if cells is not None:
        out["h3"] = cells[keep]
    return out


_H3_SPLIT = 20_000  # below this, one call: the hand-off costs more than it saves


def _cells(lon: np.ndarray, lat: np.ndarray, res: int) -> np.ndarray:
    """``points_to_cells`` with the second half in a thread: h3ronpy releases the GIL, and H3 was the
    largest single step of a load (~1 µs a point), so a free core halves it. (A thread per call, not
    a module-wide pool: a pool would not survive a fork, and one thread per chunk costs ~0.1 ms.)"""
    if len(lon) < _H3_SPLIT:
        return points_to_cells(lon, lat, res)
    half = len(lon) // 2
    with ThreadPoolExecutor(1, thread_name_prefix="h3") as pool:
        second = pool.submit(points_to_cells, lon[half:], lat[half:], res)
        first = points_to_cells(lon[:half], lat[:half], res)
        return np.concatenate([first, second.result()])


def _map_categories(cmap: CategoryMap, raw: pd.Series) -> tuple[pd.Categorical, np.ndarray]:
    """``cmap.map`` of the distinct values only (a chunk holds a few dozen), as a Categorical.

    Returns (codes, unknown mask), as ``cmap.map`` would for every row.
    """
    idx, uniq = pd.factorize(raw, use_na_sentinel=True)
    if (idx < 0).any():  # missing values: let the map decide per row
        codes, unknown = cmap.map(raw)
        return pd.Categorical(np.asarray(codes, dtype=object)), np.asarray(unknown, bool)
    ucodes, uunknown = cmap.map(pd.Series(np.asarray(uniq, dtype=object), dtype=object))
    labels, at = np.unique(np.asarray(ucodes, dtype=object).astype(str), return_inverse=True)
    return pd.Categorical.from_codes(np.asarray(at, np.int64).ravel()[idx], labels), np.asarray(uunknown, bool)[idx]


def _constant(value: str, n: int) -> pd.Categorical:
    return pd.Categorical.from_codes(np.zeros(n, np.int8), [value])


def _rows(values, keep: np.ndarray):
    """The kept rows of a Categorical or Series, as an array a DataFrame takes without re-inferring."""
    if isinstance(values, pd.Categorical):
        return values[keep]
    return values.to_numpy()[keep]


def _parse_times(raw: pd.Series, tz: str) -> pd.Series:
    """Timestamps in UTC; naive ones are local time in ``tz``. Unparseable → NaT."""
    fast = _iso_with_offsets(raw)
    if fast is not None:
        return fast
    s = raw.astype("string").str.strip()
    try:
        t = pd.to_datetime(s, errors="coerce", format="ISO8601")
    except ValueError:  # mixed UTC offsets in one column
        t = pd.Series([pd.to_datetime(v, errors="coerce") if v is not pd.NA else pd.NaT for v in s], index=raw.index, dtype=object)
    if t.isna().any() and (s[t.isna()].notna()).any():
        retry = s[t.isna() & s.notna()]
        t = t.astype(object)
        for i, v in retry.items():  # only the few rows that are not ISO 8601
            t[i] = pd.to_datetime(v, errors="coerce", format="mixed")
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        return t.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(t.dtype):
        # an hour repeated at a DST change is read as the DST one; a skipped hour shifts forward
        return t.dt.tz_localize(tz, ambiguous=np.ones(len(t), bool), nonexistent="shift_forward").dt.tz_convert("UTC")
    return pd.to_datetime(pd.Series([_aware(v, tz) for v in t], index=raw.index), utc=True)


def _iso_with_offsets(raw: pd.Series) -> pd.Series | None:
    """UTC timestamps when every value is ISO 8601 with a UTC offset (what exports usually hold).

    Arrow's parser is ~9x faster than pandas' here; it accepts exactly such values, so anything
    else (naive local times, other layouts, garbage, a missing value) returns None and is left to pandas.
    """
    if not pd.api.types.is_string_dtype(raw.dtype) or raw.isna().any():
        return None
    try:
        arr = pc.utf8_trim_whitespace(pa.array(raw, type=pa.string(), from_pandas=True))
        ts = pc.cast(arr, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return pd.Series(ts.to_pandas(), index=raw.index)


def _aware(v, tz):
    if v is None or pd.isna(v):
        return pd.NaT
    v = pd.Timestamp(v)
    if v.tzinfo is None:
        try:
            return v.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
        except Exception:
            return pd.NaT
    return v


def _content_ids(t: pd.Series, lon, lat, codes: pd.Series) -> np.ndarray:
    """Stable ids from content, for files that carry none: time, place (1e-6°) and category."""
    key = (t.dt.strftime("%Y%m%dT%H%M%S").fillna("") + "|" + pd.Series(np.round(lon, 6), index=t.index).astype(str)
           + "|" + pd.Series(np.round(lat, 6), index=t.index).astype(str) + "|" + codes.astype(str))
    return np.array([hashlib.blake2b(k.encode(), digest_size=10).hexdigest() for k in key], dtype=object)
