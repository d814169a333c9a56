"""Incident simulation: population background, planted hotspots, near-repeat bursts, patrol bias.

Counts are fixed before anything is drawn (category quotas, then each hotspot's share, then the
follow-ups), so the category mix holds at any size and every step is one vectorised draw per
(category, source) pair. Everything is in the local metric frame; times are seconds after start.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from geogrid.generate.hotspots import Hotspot
from geogrid.generate.rhythms import CATEGORIES, Calendar, quotas

DISCOVERED_SHARE = 0.15  # incidents found by patrols rather than reported by callers
PATROL_REACH_M = 800.0  # patrol finds fall off with distance from a post on this scale
REPEAT_RADIUS_M = 80.0  # σ of a follow-up's offset: 95 % fall within ~200 m
REPEAT_DAYS = 7

_SHARES = np.array([c.share for c in CATEGORIES])
_URGENT = np.array([c.urgent for c in CATEGORIES])
_PATROL = np.array([c.patrol for c in CATEGORIES])
_REPEAT = np.array([c.near_repeat for c in CATEGORIES])


class AreaSampler:
    """Uniform points inside polygons, each polygon drawn in proportion to a weight.

    Hand-written (geopandas' ``sample_points`` loops per polygon and rejects, too slow for a
    million points): the polygons are triangulated once, then triangles are drawn by weight and
    points placed by barycentric coordinates, all vectorised.
    """

    def __init__(self, polygons: np.ndarray, weights: np.ndarray):
        tris = shapely.constrained_delaunay_triangles(polygons)
        parts, owner = shapely.get_parts(tris, return_index=True)
        coords = shapely.get_coordinates(shapely.get_exterior_ring(parts)).reshape(-1, 4, 2)
        self.a, self.ab, self.ac = coords[:, 0], coords[:, 1] - coords[:, 0], coords[:, 2] - coords[:, 0]
        area = shapely.area(parts)
        w = np.asarray(weights, float)[owner] * area / shapely.area(polygons)[owner]
        self.cdf = np.cumsum(w)
        self.owner = owner

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        t = np.searchsorted(self.cdf, rng.random(n) * self.cdf[-1], side="right")
        t = np.minimum(t, self.cdf.size - 1)
        u, v = rng.random(n), rng.random(n)
        flip = u + v > 1.0
        u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
        return self.a[t] + u[:, None] * self.ab[t] + v[:, None] * self.ac[t]


@dataclass
class IncidentModel:
    """Everything the simulation needs, in the local metric frame."""

    jurisdiction: Polygon
    background: AreaSampler
    hotspots: list[Hotspot]
    posts_xy: np.ndarray
    calendar: Calendar


@dataclass
class Draw:
    """Simulated incidents as plain arrays (metres, seconds after start, category index)."""

    xy: np.ndarray
    seconds: np.ndarray
    category: np.ndarray
    urgent: np.ndarray | None = None
    discovered: np.ndarray | None = None


def simulate(rng: np.random.Generator, model: IncidentModel, n: int, near_repeat: bool = True,
             attributes: bool = True) -> Draw:
    """``n`` incidents: background ∝ population, hotspots, follow-ups, priority and origin.

    ``near_repeat=False`` leaves out the follow-ups, ``attributes=False`` priority and origin.
    """
    quota = quotas(n, _SHARES)
    follow = np.round(_REPEAT * quota).astype(np.int64) if near_repeat else np.zeros_like(quota)
    first = _first_incidents(rng, model, quota - follow)
    draw = _add_follow_ups(rng, model, first, follow) if follow.any() else first
    if not attributes:
        return draw
    draw.urgent = rng.random(n) < _URGENT[draw.category]
    draw.discovered = _patrol_finds(rng, model.posts_xy, draw)
    return draw


def _first_incidents(rng: np.random.Generator, model: IncidentModel, quota: np.ndarray) -> Draw:
    n = int(quota.sum())
    cal = model.calendar
    # hotspot counts by category, capped so no category exceeds its quota
    hot = np.array([rng.multinomial(round(h.strength * n), h.mix) for h in model.hotspots])
    hot = hot.reshape(len(model.hotspots), quota.size)
    cap = np.minimum(1.0, quota / np.maximum(hot.sum(axis=0), 1))
    hot = np.floor(hot * cap).astype(np.int64)
    bg = quota - hot.sum(axis=0)

    xy, sec, cat = [], [], []
    for h, spot in enumerate(model.hotspots):
        trend = spot.trend_factor(cal.t)
        pts = spot.sample(rng, int(hot[h].sum()))
        xy.append(pts)
        for c in np.flatnonzero(hot[h]):
            sec.append(cal.sample(rng, c, int(hot[h, c]), trend))
            cat.append(np.full(hot[h, c], c))
    pts = np.vstack(xy) if xy else np.empty((0, 2))
    # a hotspot's tail may reach past the city limit: those points move to the background
    out = ~shapely.contains_xy(model.jurisdiction, pts[:, 0], pts[:, 1])
    pts[out] = model.background.sample(rng, int(out.sum()))
    xy = [pts, model.background.sample(rng, int(bg.sum()))]
    for c in np.flatnonzero(bg):
        sec.append(cal.sample(rng, c, int(bg[c])))
        cat.append(np.full(bg[c], c))
    return Draw(np.vstack(xy), np.concatenate(sec), np.concatenate(cat).astype(np.int16))


def _add_follow_ups(rng: np.random.Generator, model: IncidentModel, first: Draw,
                    follow: np.ndarray) -> Draw:
    """Self-exciting bursts: follow-ups near an earlier incident of the same category, soon after.

    Two generations (a follow-up may have its own follow-up); the lag is whole days, mostly 1–3,
    at about the same time of day, as repeat burglaries tend to be.
    """
    xy, sec, cat = [first.xy], [first.seconds], [first.category]
    end = model.calendar.days * 86400.0
    for c in np.flatnonzero(follow):
        pool = np.flatnonzero(first.category == c)
        p_xy, p_sec = first.xy[pool], first.seconds[pool]
        for k in (follow[c] - follow[c] // 2, follow[c] // 2):  # generation 1, then 2
            parent = rng.integers(0, len(p_sec), k)
            lag_days = np.minimum(rng.geometric(0.45, k) - 1, REPEAT_DAYS)
            jitter = rng.normal(0.0, 1.5 * 3600.0, k)
            same_day = lag_days == 0
            jitter[same_day] = np.abs(jitter[same_day]) + 600.0
            s = np.clip(p_sec[parent] + lag_days * 86400.0 + jitter, 0.0, end - 1.0)
            pts = p_xy[parent] + rng.normal(0.0, REPEAT_RADIUS_M, (k, 2))
            out = ~shapely.contains_xy(model.jurisdiction, pts[:, 0], pts[:, 1])
            pts[out] = p_xy[parent][out]
            xy.append(pts)
            sec.append(s)
            cat.append(np.full(k, c, dtype=np.int16))
            p_xy, p_sec = np.vstack([p_xy, pts]), np.concatenate([p_sec, s])
    return Draw(np.vstack(xy), np.concatenate(sec), np.concatenate(cat))


def _patrol_finds(rng: np.random.Generator, posts_xy: np.ndarray, draw: Draw) -> np.ndarray:
    """Which incidents patrols discovered: likelier near a post and for patrol-visible categories."""
    dist, _ = cKDTree(posts_xy).query(draw.xy)
    p = _PATROL[draw.category] * np.exp(-dist / PATROL_REACH_M)
    scale = DISCOVERED_SHARE / p.mean()
    for _ in range(5):  # the cap at 0.95 lowers the mean a little: rescale until it holds
        scale *= DISCOVERED_SHARE / np.minimum(scale * p, 0.95).mean()
    return rng.random(p.size) < np.minimum(scale * p, 0.95)
