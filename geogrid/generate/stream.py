"""A large incident CSV for the ingest benchmark, written chunk by chunk in bounded memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geogrid.errors import InputError
from geogrid.generate.city import build_base
from geogrid.generate.incidents import simulate
from geogrid.generate.rhythms import LABELS, Calendar

CSV_COLUMNS = ["id", "lon", "lat", "time", "category"]


def generate_incidents_csv(path: str | Path, n: int, seed: int = 42, chunk: int = 500_000,
                           start: str = "2025-01-01", days: int = 365) -> Path:
    """Write ``n`` incidents of the default demo city to a CSV, ``chunk`` rows at a time.

    Same grids, population background, hotspots and hour × weekday cycles as
    :func:`generate_city` with the same ``seed``, but no near-repeat follow-ups (they need the
    whole history in memory). Memory stays at a few hundred bytes per row of ``chunk``.

    Parameters
    ----------
    path
        Output file (overwritten). Columns ``id, lon, lat, time, category``; ``lon``/``lat`` in
        WGS-84 with 6 decimals, ``time`` ISO 8601 with the +08:00 offset, ``category`` the raw
        Chinese label. Rows are in time order within each chunk, not across chunks.
    n, seed, chunk, start, days
        Row count, seed, rows per chunk, and the period.

    Returns
    -------
    Path
        ``path``.
    """
    for name, value in (("n", n), ("chunk", chunk), ("days", days)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    base = build_base(seed, 860, 40, 320, 600)
    calendar = Calendar(start, days)
    model = base.incident_model(calendar)
    # one independent stream per chunk: the file depends on ``chunk`` but never on memory state
    streams = np.random.SeedSequence([seed, 0xC5F]).spawn(-(-n // chunk))
    labels = pa.array(list(LABELS), pa.string())
    schema = pa.schema([(c, pa.string() if c not in ("lon", "lat") else pa.float64())
                        for c in CSV_COLUMNS])
    path = Path(path)
    # pyarrow's C++ writer: pandas' to_csv formats floats one Python call at a time (~10x slower)
    # no field holds a comma or a quote; the header is written by hand as pyarrow quotes it anyway
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with pa.OSFile(str(path), "wb") as sink, pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        sink.write((",".join(CSV_COLUMNS) + "\n").encode())
        for k, ss in enumerate(streams):
            m = min(chunk, n - k * chunk)
            draw = simulate(np.random.default_rng(ss), model, m, near_repeat=False,
                            attributes=False)
            order = np.argsort(draw.seconds, kind="stable")
            lon, lat = base.frame.to_lonlat(*draw.xy[order].T)
            t = calendar.start.to_datetime64().astype("datetime64[s]") + np.floor(
                draw.seconds[order]).astype("timedelta64[s]")
            serial = pa.array(np.arange(k * chunk + 1, k * chunk + m + 1)).cast(pa.string())
            writer.write_table(pa.table({
                "id": pc.binary_join_element_wise("HF", pc.utf8_lpad(serial, 9, "0"), ""),
                "lon": np.round(lon, 6),
                "lat": np.round(lat, 6),
                "time": pc.binary_join_element_wise(
                    pa.array(np.datetime_as_string(t, unit="s")), "+08:00", ""),
                "category": pc.take(labels, pa.array(draw.category[order].astype(np.int32))),
            }, schema=schema))
    return path
