"""Density clusters: two planted blobs come back as two polygons with their mix and hours."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from geogrid.clusters import DensityClusters
from geogrid.errors import InputError, NotEnoughData

BLOB_A = (121.47, 31.23)  # Shanghai: UTM zone 51N
BLOB_B = (121.50, 31.25)
SIGMA_DEG = 0.0006  # ~60 m
COUNT_TOL = 0.1


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    """300 points in blob A (theft at night), 200 in blob B (disputes in the evening), 150 noise."""
    rng = np.random.default_rng(5)
    t0 = pd.Timestamp("2024-06-03", tz="Asia/Shanghai")
    parts = []
    for (x, y), n, cat, hours in ((BLOB_A, 300, "theft", [22, 23, 0, 1]), (BLOB_B, 200, "dispute", [19, 20, 21, 22])):
        parts.append(pd.DataFrame({
            "lon": rng.normal(x, SIGMA_DEG, n),
            "lat": rng.normal(y, SIGMA_DEG, n),
            "category": np.where(rng.random(n) < 0.8, cat, "fraud"),
            "occurred_at": t0 + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
            + pd.to_timedelta(rng.choice(hours, n), unit="h"),
        }))
    parts.append(pd.DataFrame({
        "lon": rng.uniform(121.40, 121.56, 150),
        "lat": rng.uniform(31.17, 31.31, 150),
        "category": "fraud",
        "occurred_at": t0 + pd.to_timedelta(rng.integers(0, 30 * 24, 150), unit="h"),
    }))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize(
    "params",
    [dict(method="hdbscan", min_cluster_size=50, min_samples=10), dict(method="dbscan", eps_m=60, min_samples=10)],
    ids=["hdbscan", "dbscan"],
)
def test_two_blobs_found(incidents, params):
    model = DensityClusters(**params).fit(incidents)
    cl = model.clusters_
    assert model.crs_.to_epsg() == 32651
    assert len(cl) == 2
    assert cl.crs.to_epsg() == 4326
    assert model.labels_.shape == (len(incidents),)
    for (x, y), n, cat, window in ((BLOB_A, 300, "theft", "22:00–02:00"), (BLOB_B, 200, "dispute", "19:00–23:00")):
        row = cl[cl.contains(Point(x, y))]
        assert len(row) == 1
        row = row.iloc[0]
        assert row["count"] == pytest.approx(n, rel=COUNT_TOL)
        assert row["dominant_category"] == cat
        assert 0.7 <= row["dominant_share"] <= 0.9
        top = json.loads(row["top_categories"])
        assert top[0][0] == cat and {c for c, _ in top} <= {cat, "fraud"}
        assert row["peak_window"] == window
        assert row["peak_window_share"] > 0.9
        assert 0 < row["area_km2"] < 1


def test_cells_shape_is_union_of_cells(incidents):
    cl = DensityClusters(method="dbscan", eps_m=60, min_samples=10, shape="cells", res=10).fit(incidents).clusters_
    assert len(cl) == 2
    # res-10 cells are ~0.015 km2: a cluster of ~60 m sigma covers a handful to a few dozen
    assert (cl["area_km2"] > 0.015).all() and (cl["area_km2"] < 1).all()


def test_noise_only_gives_empty_frame():
    """Sparse uniform points: no dense region, so no cluster and an empty (but typed) frame."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"lon": rng.uniform(121.4, 121.6, 50), "lat": rng.uniform(31.1, 31.3, 50), "category": "x"})
    model = DensityClusters(method="dbscan", eps_m=50, min_samples=10).fit(df)
    assert (model.labels_ == -1).all()
    assert len(model.clusters_) == 0 and "peak_window" in model.clusters_.columns


@pytest.mark.parametrize(
    "params, error",
    [(dict(method="kmeans"), InputError), (dict(eps_m=0), InputError), (dict(shape="blob"), InputError)],
    ids=["bad-method", "bad-eps", "bad-shape"],
)
def test_bad_parameters(incidents, params, error):
    with pytest.raises(error):
        DensityClusters(**params).fit(incidents)


def test_too_few_points():
    df = pd.DataFrame({"lon": [121.4, 121.5], "lat": [31.2, 31.2]})
    with pytest.raises(NotEnoughData):
        DensityClusters(min_samples=5).fit(df)
