"""Time patterns: hour x weekday matrices, planted peaks found and worded, JSON and PNG output."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geogrid.errors import InputError
from geogrid.patterns import describe_peaks, peaks, plot_heatmap, time_matrix, time_patterns

TZ = "Asia/Shanghai"


def _times(rng, n, days=None, hours=None) -> pd.Series:
    """n local times over 8 weeks from Monday 2024-01-01; optional weekday and hour choices."""
    week = rng.integers(0, 8, n)
    day = rng.choice(days, n) if days is not None else rng.integers(0, 7, n)
    hour = rng.choice(hours, n) if hours is not None else rng.integers(0, 24, n)
    t0 = pd.Timestamp("2024-01-01", tz=TZ)
    off = pd.to_timedelta(week * 7 + day, unit="D") + pd.to_timedelta(hour, unit="h")
    return pd.Series(t0 + off + pd.to_timedelta(rng.integers(0, 3600, n), unit="s"))


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    """Uniform thefts (3,360 = 20 per hour-weekday) and disputes: 1,680 uniform plus 600 planted on
    Fri–Sat 19:00–23:00; grid A holds the disputes, grid B the thefts."""
    rng = np.random.default_rng(8)
    theft = _times(rng, 3360)
    disp = pd.concat([_times(rng, 1680), _times(rng, 600, days=[4, 5], hours=[19, 20, 21, 22])])
    return pd.DataFrame({
        "occurred_at": pd.concat([theft, disp], ignore_index=True),
        "category": ["theft"] * 3360 + ["dispute"] * 2280,
        "grid": ["B"] * 3360 + ["A"] * 2280,
    })


def test_matrix_shape_and_totals(incidents):
    m = time_matrix(incidents)
    assert m.shape == (24, 7) and list(m.columns) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert m.to_numpy().sum() == len(incidents)
    by = time_matrix(incidents, by="category")
    assert set(by) == {"dispute", "theft"}
    assert sum(x.to_numpy().sum() for x in by.values()) == len(incidents)
    # the planted window is where the disputes matrix is highest
    assert by["dispute"].loc[19:22, ["Fri", "Sat"]].to_numpy().min() > by["dispute"].loc[0:18].to_numpy().max()


def test_local_time_is_used():
    """A UTC instant that is Friday 20:00 in Shanghai counts as Friday 20:00."""
    t = pd.Series([pd.Timestamp("2024-01-05 12:00", tz="UTC").tz_convert(TZ)])
    m = time_matrix(pd.DataFrame({"occurred_at": t}))
    assert m.loc[20, "Fri"] == 1


def test_planted_peak_found_and_described(incidents):
    m = time_matrix(incidents, by="category")["dispute"]
    found = peaks(m)
    assert len(found) == 1
    pk = found[0]
    assert (pk["days"], pk["start_hour"], pk["end_hour"]) == ([4, 5], 19, 23)
    assert pk["ratio"] > 3
    assert describe_peaks(found, "disputes") == "disputes peak Fri–Sat 19:00–23:00"
    assert describe_peaks(found, "邻里纠纷", "zh-CN") == "邻里纠纷高发于周五至周六 19:00–23:00"


def test_uniform_category_has_no_peak(incidents):
    m = time_matrix(incidents, by="category")["theft"]
    assert peaks(m) == []
    assert describe_peaks([], "thefts") == "thefts show no significant peak"
    assert describe_peaks([], "盗窃", "zh-CN") == "盗窃无明显高发时段"


@pytest.mark.parametrize(
    "days, hours, words",
    [
        ([6, 0], [22, 23, 0, 1], "Sun–Mon 22:00–02:00"),
        (list(range(7)), [8], "daily 08:00–09:00"),
        ([1, 3], [12, 13], "Tue, Thu 12:00–14:00"),
    ],
    ids=["wrap-midnight-and-week", "every-day", "split-days"],
)
def test_window_words(days, hours, words):
    """A hand-made matrix with one block of planted counts over a flat floor."""
    m = np.full((24, 7), 10)
    for d in days:
        for h in hours:
            m[h, d] = 60
    found = peaks(pd.DataFrame(m))
    text = describe_peaks(found, "x")
    # split days are two separate windows with the same hours
    expected = "x peak " + (words if len(found) == 1 else "Tue 12:00–14:00 and Thu 12:00–14:00")
    assert text == expected


def test_independent_expectation_ignores_common_daily_rhythm():
    """Every day busier in the evening: a peak against uniform, none against hour x day margins."""
    m = np.full((24, 7), 10)
    m[18:22, :] = 40
    assert peaks(pd.DataFrame(m), expected="uniform")
    assert peaks(pd.DataFrame(m), expected="independent") == []


def test_time_patterns_is_json(incidents):
    out = time_patterns(incidents, by="category", labels={"dispute": {"en": "disputes", "zh-CN": "邻里纠纷"}})
    text = json.dumps(out, ensure_ascii=False)
    back = json.loads(text)
    assert back["groups"]["dispute"]["text"]["en"] == "disputes peak Fri–Sat 19:00–23:00"
    assert back["groups"]["dispute"]["text"]["zh-CN"] == "邻里纠纷高发于周五至周六 19:00–23:00"
    assert back["groups"]["theft"]["peaks"] == []
    assert back["citywide"]["total"] == len(incidents)
    assert len(back["citywide"]["matrix"]) == 24 and len(back["citywide"]["matrix"][0]) == 7
    by_grid = time_patterns(incidents, by="grid")
    assert set(by_grid["groups"]) == {"A", "B"}


def test_heatmap_png(incidents, tmp_path):
    m = time_matrix(incidents, by="category")["dispute"]
    path = plot_heatmap(m, tmp_path / "disputes.png", "disputes", found=peaks(m))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize(
    "call",
    [lambda: peaks(pd.DataFrame(np.ones((7, 24)))), lambda: peaks(pd.DataFrame(np.ones((24, 7))), expected="x"),
     lambda: describe_peaks([], "x", "fr"), lambda: time_matrix(pd.DataFrame({"occurred_at": []}), by="grid")],
    ids=["transposed", "bad-expected", "bad-lang", "missing-by-column"],
)
def test_bad_input(call):
    with pytest.raises(InputError):
        call()
