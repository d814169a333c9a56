"""Grid features: the per-grid numbers that tiers and staffing are computed from.

One row per grid, indexed by grid ``code``:

``n_<category>``        incidents of each category in the window (raw counts)
``incidents``           all incidents in the window
``weighted_incidents``  sum of category severities (severity weights; default 1.0)
``area_km2``            area in a Lambert azimuthal equal-area projection centred on the city
``density_per_km2``     weighted incidents per km² **per year** (annualised with ``period_days``)
``per_1000_residents``  weighted incidents per 1,000 residents per year (NaN when population is 0)
``hotspot_share``       share (0–1) of the grid in hotspots, from the hotspot module (0 for grids it
                        omits; NaN everywhere when no hotspot table is given)
``trend``               ``log((w2 + 1) / (w1 + 1))``: weighted incidents in the second half of the
                        window against the first half; > 0 rising, < 0 falling, 0 flat or empty.
                        A half-window ratio rather than a Theil–Sen slope: it needs no binning choice
                        and stays defined for grids with a handful of incidents.
``forecast_risk``       the forecast module's risk for the grid (0 if absent; NaN if no forecast given)
``population``, ``kind`` (urban/rural), ``key_<flag>`` (bool per key-area flag), ``n_key_areas``
``period_days``         length of the window, so workloads can be annualised downstream
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from geogrid.errors import InputError

KEY_AREA_FLAGS = ("old_compound", "commercial_street", "urban_village")
KINDS = ("urban", "rural")
Severity = Mapping[str, float] | Callable[[str], float] | None


def grid_features(
    grids: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    severity: Severity = None,
    hotspot_share: pd.DataFrame | pd.Series | None = None,
    forecast: pd.DataFrame | pd.Series | None = None,
    period_days: float | None = None,
) -> pd.DataFrame:
    """Features of each grid from its incidents and attributes.

    Parameters
    ----------
    grids : GeoDataFrame with ``code``, ``kind`` ('urban'|'rural'), ``population`` and optionally
        ``key_areas`` (list of flags, or a comma-separated string) and a CRS.
    incidents : DataFrame with ``category``, ``occurred_at`` and either ``grid_code`` or point
        geometry / ``lon`` + ``lat`` (then joined to the grids; points outside every grid are dropped).
    severity : mapping ``category -> weight`` (missing codes weigh 1.0) or a callable; by default
        ``geogrid.categories.CategoryMap.default().severity`` when that module exists, else 1.0.
    hotspot_share, forecast : Series indexed by grid code, or DataFrame with a ``code`` column (or
        code index) and a ``hotspot_share`` / ``forecast_risk`` column. Grids absent get 0.
    period_days : length of the window in days; default: from the first to the last incident.

    Returns
    -------
    DataFrame indexed by ``code`` (see the module docstring for the columns).
    """
    grids = _check_grids(grids)
    incidents = _assign_grid(grids, _check_incidents(incidents))
    times = pd.to_datetime(incidents["occurred_at"], utc=True, format="mixed")
    period_days = _period_days(times, period_days)
    weight = _severity_weights(incidents["category"], severity)

    out = pd.DataFrame(index=pd.Index(grids["code"], name="code"))
    counts = pd.crosstab(incidents["grid_code"], incidents["category"])
    counts = counts.reindex(out.index, fill_value=0).astype("int64")
    for cat in sorted(counts.columns):
        out[f"n_{cat}"] = counts[cat].to_numpy()
    out["incidents"] = counts.sum(axis=1).to_numpy() if len(counts.columns) else 0
    w = weight.groupby(incidents["grid_code"]).sum()
    out["weighted_incidents"] = w.reindex(out.index, fill_value=0.0).to_numpy(dtype=float)

    area = _area_km2(grids)
    years = period_days / 365.0
    out["area_km2"] = area
    out["density_per_km2"] = out["weighted_incidents"] / area / years
    pop = grids["population"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["per_1000_residents"] = np.where(pop > 0, out["weighted_incidents"] / pop * 1000 / years,
                                             np.nan)
    out["hotspot_share"] = _extra(hotspot_share, "hotspot_share", out.index, bounds=(0.0, 1.0))
    out["trend"] = _trend(incidents["grid_code"], times, weight, out.index)
    out["forecast_risk"] = _extra(forecast, "forecast_risk", out.index, bounds=(0.0, np.inf))
    out["population"] = pop
    out["kind"] = grids["kind"].to_numpy()
    flags = grids["key_areas"].map(_flags) if "key_areas" in grids else pd.Series([[]] * len(grids))
    known = list(KEY_AREA_FLAGS) + sorted({f for fl in flags for f in fl} - set(KEY_AREA_FLAGS))
    for flag in known:
        out[f"key_{flag}"] = [flag in fl for fl in flags]
    out["n_key_areas"] = [len(set(fl)) for fl in flags]
    out["period_days"] = period_days
    return out


def _check_grids(grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise InputError("grids must be a GeoDataFrame with polygon geometry")
    missing = [c for c in ("code", "kind", "population") if c not in grids]
    if missing:
        raise InputError(f"grids lack column(s) {missing}; add them (kind is 'urban' or 'rural')")
    if grids.crs is None:
        raise InputError("grids have no CRS; set it, e.g. grids.set_crs('EPSG:4326')")
    if grids["code"].duplicated().any():
        dup = grids.loc[grids["code"].duplicated(), "code"].iloc[0]
        raise InputError(f"grids column 'code' has duplicates (e.g. {dup!r}); codes must be unique")
    bad = ~grids["kind"].isin(KINDS)
    if bad.any():
        raise InputError(f"grids column 'kind' must be 'urban' or 'rural', got {grids['kind'][bad].iloc[0]!r}")
    pop = pd.to_numeric(grids["population"], errors="coerce")
    if pop.isna().any() or (pop < 0).any():
        raise InputError("grids column 'population' must be a number >= 0 for every grid")
    return grids.assign(population=pop).reset_index(drop=True)


def _check_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(incidents, pd.DataFrame):
        raise InputError("incidents must be a DataFrame")
    missing = [c for c in ("category", "occurred_at") if c not in incidents]
    if missing:
        raise InputError(f"incidents lack column(s) {missing}")
    if incidents["category"].isna().any():
        raise InputError("incidents column 'category' has missing values; map them to 'other'")
    if pd.to_datetime(incidents["occurred_at"], utc=True, errors="coerce", format="mixed").isna().any():
        raise InputError("incidents column 'occurred_at' has missing or unparseable times")
    return incidents


def _assign_grid(grids: gpd.GeoDataFrame, incidents: pd.DataFrame) -> pd.DataFrame:
    if "grid_code" not in incidents:
        if isinstance(incidents, gpd.GeoDataFrame):
            pts = incidents.to_crs(grids.crs)
        elif {"lon", "lat"} <= set(incidents.columns):
            pts = gpd.GeoDataFrame(incidents, geometry=gpd.points_from_xy(incidents["lon"], incidents["lat"]),
                                   crs="EPSG:4326").to_crs(grids.crs)
        else:
            raise InputError("incidents need 'grid_code', a point geometry, or 'lon' and 'lat' columns")
        joined = gpd.sjoin(pts, grids[["code", "geometry"]], how="left", predicate="within")
        joined = joined[~joined.index.duplicated()]  # a point on a shared edge counts once
        incidents = pd.DataFrame(incidents).assign(grid_code=joined["code"].to_numpy())
    unknown = ~incidents["grid_code"].isin(grids["code"])
    if unknown.any():
        warnings.warn(f"{int(unknown.sum())} incident(s) lie in no known grid and are left out", stacklevel=3)
    return incidents.loc[~unknown]


def _period_days(times: pd.Series, period_days: float | None) -> float:
    if period_days is None:
        if times.empty:
            raise InputError("no incidents: pass period_days to say how long the window is")
        return max((times.max() - times.min()).total_seconds() / 86400.0, 1.0)
    if not np.isfinite(period_days) or period_days <= 0:
        raise InputError(f"period_days must be a positive number of days, got {period_days!r}")
    return float(period_days)


def _severity_weights(category: pd.Series, severity: Severity) -> pd.Series:
    if severity is None:
        try:
            from geogrid.categories import CategoryMap  # written by another module; optional here
            severity = CategoryMap.default().severity
        except ImportError:
            return pd.Series(1.0, index=category.index)
    lookup = severity if callable(severity) else (lambda c: float(severity.get(c, 1.0)))
    table = {c: float(lookup(c)) for c in pd.unique(category)}
    bad = {c: v for c, v in table.items() if not np.isfinite(v) or v < 0}
    if bad:
        raise InputError(f"severity weights must be finite and >= 0, got {bad}")
    return category.map(table).astype(float)


def _area_km2(grids: gpd.GeoDataFrame) -> np.ndarray:
    # An equal-area projection centred on the city: UTM distorts areas by up to ~0.1 %, LAEA by ~0.
    lon, lat = grids.to_crs("EPSG:4326").union_all().centroid.coords[0]
    area = grids.to_crs(f"+proj=laea +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m").area / 1e6
    if (area <= 0).any():
        raise InputError(f"grid {grids['code'][area <= 0].iloc[0]!r} has zero area; fix its polygon")
    return area.to_numpy()


def _trend(grid: pd.Series, times: pd.Series, weight: pd.Series, index: pd.Index) -> np.ndarray:
    if times.empty:
        return np.zeros(len(index))
    mid = times.min() + (times.max() - times.min()) / 2
    late = times > mid
    w2 = weight[late].groupby(grid[late]).sum().reindex(index, fill_value=0.0)
    w1 = weight[~late].groupby(grid[~late]).sum().reindex(index, fill_value=0.0)
    return np.log((w2.to_numpy() + 1.0) / (w1.to_numpy() + 1.0))


def _extra(values: pd.DataFrame | pd.Series | None, column: str, index: pd.Index,
           bounds: tuple[float, float]) -> np.ndarray:
    if values is None:
        return np.full(len(index), np.nan)  # "not given" differs from 0; tiers drop the feature
    if isinstance(values, pd.DataFrame):
        if column not in values:
            raise InputError(f"the {column} table needs a '{column}' column")
        values = values.set_index("code")[column] if "code" in values else values[column]
    s = pd.to_numeric(values, errors="coerce").groupby(level=0).first().reindex(index).fillna(0.0)
    lo, hi = bounds
    if ((s < lo) | (s > hi)).any():
        raise InputError(f"{column} must lie in [{lo}, {hi}]")
    return s.to_numpy(dtype=float)


def _flags(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    return [str(f) for f in value]
