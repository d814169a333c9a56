"""Planted hotspots: places where incidents concentrate, with a shape, a strength and a trend.

Three shapes, each a closed-form intensity so that its "above half the peak" polygon is exact:

- ``round``: a nightlife block or a burglary-prone estate, ``exp(-d²/2σ²)`` around a centre;
- ``street``: a commercial street, ``exp(-d²/2σ²)`` with ``d`` the distance to a segment;
- ``ring``: the crowd around a market hall, ``exp(-(r-R)²/2w²)`` in the distance ``r`` to its centre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon

from geogrid.generate.rhythms import LABELS

_HALF = np.sqrt(2.0 * np.log(2.0))  # distance, in σ, at which a Gaussian falls to half its peak


def _mix(**shares: float) -> np.ndarray:
    """Category mix over :data:`LABELS` from label=share pairs (normalised)."""
    v = np.array([shares.get(label, 0.0) for label in LABELS])
    return v / v.sum()


#: Category mixes of the kinds of hotspot (the label keys are the raw Chinese labels).
MIXES: dict[str, np.ndarray] = {
    "nightlife": _mix(殴打=0.25, 扰乱公共秩序=0.2, 邻里纠纷=0.2, 盗窃=0.2, 抢劫=0.05, 其他=0.1),
    "estate": _mix(入室盗窃=0.55, 盗窃=0.25, 邻里纠纷=0.15, 其他=0.05),
    "street": _mix(盗窃=0.45, 电信诈骗=0.1, 邻里纠纷=0.2, 扰乱公共秩序=0.1, 抢劫=0.05, 其他=0.1),
    "market": _mix(盗窃=0.35, 邻里纠纷=0.35, 电信诈骗=0.1, 殴打=0.1, 其他=0.1),
}
_TRENDS = {"growing": (0.2, 1.6), "fading": (1.8, -1.6), "stable": (1.0, 0.0)}


@dataclass(frozen=True)
class Hotspot:
    """One planted hotspot in the local metric frame."""

    id: int
    shape: str  # 'round' | 'street' | 'ring'
    kind: str  # key of MIXES
    strength: float  # expected share of all incidents
    trend: str  # 'growing' | 'fading' | 'stable'
    x: float
    y: float
    sigma: float  # spread across (round, street) or ring width, metres
    length: float = 0.0  # street length
    angle: float = 0.0  # street direction, radians
    radius: float = 0.0  # ring radius

    @property
    def mix(self) -> np.ndarray:
        return MIXES[self.kind]

    def _segment(self) -> tuple[np.ndarray, np.ndarray]:
        u = np.array([np.cos(self.angle), np.sin(self.angle)]) * self.length / 2
        c = np.array([self.x, self.y])
        return c - u, c + u

    def half_peak(self) -> Polygon:
        """The polygon where the intensity is above half its peak."""
        h = _HALF * self.sigma
        if self.shape == "round":
            return Point(self.x, self.y).buffer(h, 32)
        if self.shape == "street":
            return LineString(self._segment()).buffer(h, 16)
        centre = Point(self.x, self.y)
        return centre.buffer(self.radius + h, 64).difference(centre.buffer(self.radius - h, 64))

    def trend_factor(self, t: np.ndarray) -> np.ndarray:
        """Relative rate at times ``t`` in [0, 1] of the period (mean 1)."""
        a, b = _TRENDS[self.trend]
        return a + b * np.asarray(t)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points (n × 2, metres) drawn from the hotspot's intensity."""
        if self.shape == "round":
            return rng.normal((self.x, self.y), self.sigma, (n, 2))
        if self.shape == "street":
            return self._sample_street(rng, n)
        out = np.empty((0, 2))
        while len(out) < n:  # radial density ∝ r·exp(...) gives a flat ring in 2-D: thin by r
            r = np.abs(rng.normal(self.radius, self.sigma, 2 * n))
            r = r[rng.random(r.size) * (self.radius + 5 * self.sigma) < r]
            a = rng.uniform(0, 2 * np.pi, r.size)
            out = np.vstack([out, np.c_[self.x + r * np.cos(a), self.y + r * np.sin(a)]])
        return out[:n]

    def _sample_street(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # exp(-d²/2σ²) to a segment = a band (mass L·√(2π)σ) plus two half-Gaussian caps (2πσ²)
        p0, p1 = self._segment()
        along = (p1 - p0) / self.length
        across = np.array([-along[1], along[0]])
        band = self.length * np.sqrt(2 * np.pi) * self.sigma
        in_band = rng.random(n) < band / (band + 2 * np.pi * self.sigma**2)
        s = rng.uniform(0, self.length, n)
        g = rng.normal(0.0, self.sigma, (n, 2))
        pts = p0 + s[:, None] * along + g[:, :1] * across
        # caps: a 2-D Gaussian at an end, folded onto the outer side of that end
        end = rng.random(n) < 0.5
        outward = np.where(end[:, None], along, -along)
        off_along = np.abs(g[:, 0])[:, None] * outward
        cap = np.where(end[:, None], p1, p0) + off_along + g[:, 1:] * across
        return np.where(in_band[:, None], pts, cap)


def plant_hotspots(rng: np.random.Generator, core: Polygon) -> list[Hotspot]:
    """8–12 hotspots inside the urban core, of all three shapes, some growing and some fading."""
    n = int(rng.integers(8, 13))
    shapes = ["street", "street", "ring", "ring"] + ["round"] * (n - 4)
    trends = ["growing"] * 3 + ["fading"] * 2 + ["stable"] * (n - 5)
    rng.shuffle(shapes)
    rng.shuffle(trends)
    rc = np.sqrt(core.area / np.pi)
    inner = core.buffer(-0.05 * rc)
    placed: list[Hotspot] = []
    gap = 0.25 * rc  # minimum distance between hotspot outlines, relaxed if the core is crowded
    while len(placed) < n:
        for _ in range(200):
            i = len(placed)
            r, a = rc * np.sqrt(rng.uniform(0.01, 0.6)), rng.uniform(0, 2 * np.pi)
            spot = _draw(rng, i, shapes[i], trends[i], r * np.cos(a), r * np.sin(a), rc)
            poly = spot.half_peak()
            if inner.contains(poly) and all(
                shapely.distance(poly, p.half_peak()) > gap for p in placed
            ):
                placed.append(spot)
                if len(placed) == n:
                    break
        gap *= 0.7
    return placed


def _draw(rng, i, shape, trend, x, y, rc) -> Hotspot:
    strength = float(rng.uniform(0.01, 0.03))
    if shape == "round":
        kind = "nightlife" if rng.random() < 0.5 else "estate"
        return Hotspot(i + 1, shape, kind, strength, trend, x, y, float(rng.uniform(120, 280)))
    if shape == "street":
        length = float(min(rng.uniform(800, 2000), 0.4 * rc))
        return Hotspot(i + 1, shape, "street", strength, trend, x, y, float(rng.uniform(50, 90)),
                       length=length, angle=float(rng.uniform(0, np.pi)))
    return Hotspot(i + 1, shape, "market", strength, trend, x, y, float(rng.uniform(40, 70)),
                   radius=float(rng.uniform(250, 450)))
