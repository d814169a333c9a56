"""Incident categories and when they happen: the mix, hour × weekday cycles and the yearly course.

The mix follows DOMAIN.md (2023 grassroots calls: disputes 28.6 %, theft 19.2 %, telecom fraud
15.8 %); the public-service requests keep the plan's ratio (ID questions 32.5 : mediation 24.1 :
hazard reports 18.7); the rest is spread over violent, traffic and order incidents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Category:
    """One raw source label and how it behaves."""

    label: str  # raw Chinese label as a source system writes it
    en: str
    share: float  # target share of all incidents
    urgent: float  # probability that an incident is urgent (15-minute deadline)
    hours: tuple[tuple[float, float, float], ...]  # (centre hour, width h, height) bumps
    floor: float  # hour weight at the quietest time
    weekdays: tuple[float, ...]  # Mon..Sun factors
    weekend_evening: float = 1.0  # extra factor on Fri–Sat 19–23 h
    near_repeat: float = 0.0  # share of the category that are follow-ups of an earlier incident
    patrol: float = 1.0  # how often patrols (not callers) find it, relative
    yearly: float = 0.0  # change over the year on top of the citywide trend


_WEEK = (1.0,) * 7
_OFFICE = (1.2, 1.2, 1.2, 1.2, 1.15, 0.5, 0.45)
CATEGORIES: tuple[Category, ...] = (
    Category("邻里纠纷", "neighbourhood dispute", 0.286, 0.10, ((21.0, 1.8, 1.6), (12.0, 3.0, 0.5)),
             0.12, (0.85, 0.85, 0.9, 0.95, 1.25, 1.35, 1.05), 1.6, near_repeat=0.03, patrol=0.8),
    Category("盗窃", "theft", 0.150, 0.15, ((13.5, 2.6, 1.5),), 0.10,
             (1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.1), near_repeat=0.12, patrol=1.0, yearly=-0.10),
    Category("入室盗窃", "burglary", 0.042, 0.40, ((11.5, 2.5, 1.2), (3.0, 1.5, 0.4)), 0.15,
             (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.8), near_repeat=0.25, patrol=0.5),
    Category("电信诈骗", "telecom fraud", 0.158, 0.20, ((10.5, 1.8, 1.0), (15.5, 2.0, 1.0)), 0.05,
             _OFFICE, patrol=0.05, yearly=0.30),
    Category("证件咨询", "ID / certificate enquiry", 0.080, 0.0, ((10.0, 1.3, 1.0), (15.0, 1.5, 0.9)),
             0.02, (1.25, 1.25, 1.25, 1.25, 1.2, 0.3, 0.2), patrol=0.05),
    Category("矛盾调解", "dispute mediation", 0.060, 0.05, ((10.5, 2.0, 1.0), (16.0, 2.0, 0.9)), 0.05,
             (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7), patrol=0.5),
    Category("隐患报告", "hazard report", 0.046, 0.10, ((11.0, 3.5, 1.0),), 0.05,
             (1.05, 1.05, 1.05, 1.05, 1.05, 0.9, 0.85), patrol=3.0),
    Category("殴打", "assault", 0.040, 0.70, ((23.0, 2.5, 1.5),), 0.10,
             (0.8, 0.8, 0.85, 0.9, 1.3, 1.5, 1.05), near_repeat=0.05, patrol=1.2),
    Category("抢劫", "robbery", 0.008, 0.90, ((1.0, 2.5, 1.3), (21.0, 2.0, 0.6)), 0.10, _WEEK,
             near_repeat=0.10, patrol=0.5),
    Category("交通事故", "traffic accident", 0.050, 0.50, ((8.0, 1.2, 1.2), (18.0, 1.5, 1.3),
             (12.5, 3.0, 0.4)), 0.10, (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.75), patrol=1.0),
    Category("扰乱公共秩序", "public disorder", 0.030, 0.30, ((22.0, 2.5, 1.4),), 0.10,
             (0.8, 0.8, 0.85, 0.9, 1.3, 1.4, 1.1), patrol=2.5),
    Category("家庭暴力", "domestic violence", 0.020, 0.60, ((21.5, 2.0, 1.4),), 0.10,
             (0.9, 0.9, 0.9, 0.95, 1.1, 1.25, 1.2), patrol=0.2),
    Category("其他", "other", 0.030, 0.05, ((14.0, 4.0, 1.0),), 0.20, _WEEK, patrol=1.0),
)
LABELS = np.array([c.label for c in CATEGORIES], dtype=object)
#: Target share of each raw label (sums to 1).
CATEGORY_SHARES: dict[str, float] = {c.label: c.share for c in CATEGORIES}
#: English label of each raw label, for bilingual legends.
CATEGORY_EN: dict[str, str] = {c.label: c.en for c in CATEGORIES}

CITY_TREND = 0.06  # citywide change over the year (+6 %)
TZ = "Asia/Shanghai"


def quotas(n: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``n`` in the given shares (largest remainder)."""
    raw = np.asarray(shares, dtype=float) / np.sum(shares) * n
    out = np.floor(raw).astype(np.int64)
    out[np.argsort(out - raw)[: n - out.sum()]] += 1
    return out


def week_matrix(cat: Category) -> np.ndarray:
    """7 × 24 relative rates (weekday × hour) of one category."""
    h = np.arange(24) + 0.5
    hour = np.full(24, cat.floor)
    for centre, width, height in cat.hours:
        d = (h - centre + 12.0) % 24.0 - 12.0  # circular: 23 h and 1 h are two hours apart
        hour += height * np.exp(-0.5 * (d / width) ** 2)
    w = np.outer(cat.weekdays, hour)
    w[4:6, 19:24] *= cat.weekend_evening
    return w


class Calendar:
    """Samples occurrence times (seconds after ``start``, local time) for each category."""

    def __init__(self, start: str, days: int):
        self.start = pd.Timestamp(start)
        self.days = days
        d = np.arange(days)
        self.t = (d + 0.5) / days  # position of each day in the period, 0..1
        self.weekday = (self.start.day_of_week + d) % 7
        doy = (self.start.day_of_year + d) % 365
        # summer is busier; the peak falls in late July
        self.season = 1.0 + 0.08 * np.sin(2 * np.pi * (doy - 110) / 365.0)
        self._week = [week_matrix(c) for c in CATEGORIES]

    def day_weights(self, cat: int, trend: np.ndarray | None = None) -> np.ndarray:
        """Relative rate of each day for category ``cat`` times an optional extra trend."""
        yearly = 1.0 + (CITY_TREND + CATEGORIES[cat].yearly) * (self.t - 0.5)
        w = self.season * yearly
        return w if trend is None else w * trend

    def sample(self, rng: np.random.Generator, cat: int, n: int,
               trend: np.ndarray | None = None) -> np.ndarray:
        """``n`` times (float seconds after start) of category ``cat``, optionally with a trend."""
        if n == 0:
            return np.empty(0)
        # joint (day, hour) distribution flattened to days*24 cells, sampled by inverse CDF
        w = self.day_weights(cat, trend)[:, None] * self._week[cat][self.weekday]
        cdf = np.cumsum(w.ravel())
        cell = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        return (np.minimum(cell, cdf.size - 1) + rng.random(n)) * 3600.0

    def to_timestamps(self, seconds: np.ndarray) -> pd.DatetimeIndex:
        """Seconds after start → tz-aware Asia/Shanghai timestamps (whole seconds)."""
        base = np.datetime64(self.start.to_datetime64(), "s")
        t = base + np.floor(seconds).astype("timedelta64[s]")
        return pd.DatetimeIndex(t).tz_localize(TZ)
