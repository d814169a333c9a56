"""Time patterns: hour x weekday matrices, significant peaks, and peaks in words (en / zh-CN).

A matrix is a 24 x 7 DataFrame of incident counts: index ``hour`` 0–23, columns Mon..Sun, in the
local time of ``occurred_at``.

Peaks: each of the 168 hour-weekday cells is tested against its expectation — uniform over the
week (``expected='uniform'``, count ~ Binomial(N, 1/168)) or the product of the hour and weekday
margins (``'independent'``, which finds days whose hours differ from the usual daily rhythm). The
one-sided binomial p-values are Benjamini–Hochberg corrected across the 168 cells; cells with
adjusted p <= ``alpha`` and observed/expected >= ``min_ratio`` are kept. Kept cells that touch
(neighbouring hour of the same day, 23:00 touching 00:00, or the same hour of a neighbouring day,
Sun touching Mon) form one peak window, described by its weekdays and the shortest hour span that
covers its hours: "disputes peak Fri–Sat 19:00–23:00".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from geogrid.counts import incident_times
from geogrid.errors import InputError

DAYS_EN = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DAYS_ZH = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
EXPECTED = ("uniform", "independent")


def time_matrix(incidents: pd.DataFrame, by: str | None = None) -> pd.DataFrame | dict:
    """Hour x weekday counts (24 x 7); with ``by`` a dict of one matrix per value of ``incidents[by]``."""
    t = incident_times(incidents)
    if by is not None and by not in incidents.columns:
        raise InputError(f"incidents have no `{by}` column to group time patterns by")
    hour = t.dt.hour.to_numpy()
    day = t.dt.day_of_week.to_numpy()

    def _matrix(mask) -> pd.DataFrame:
        m = np.bincount(hour[mask] * 7 + day[mask], minlength=168).reshape(24, 7)
        return pd.DataFrame(m, index=pd.RangeIndex(24, name="hour"), columns=DAYS_EN)

    if by is None:
        return _matrix(np.ones(len(t), dtype=bool))
    keys = incidents[by].astype(str).to_numpy()
    return {k: _matrix(keys == k) for k in sorted(pd.unique(keys))}


def peaks(
    matrix: pd.DataFrame,
    alpha: float = 0.05,
    fdr: bool = True,
    expected: str = "uniform",
    min_ratio: float = 1.25,
    max_peaks: int = 3,
) -> list[dict]:
    """Significant peak windows of a 24 x 7 matrix, strongest (largest excess count) first.

    Each peak: ``days`` (0=Mon), ``start_hour``, ``end_hour`` (exclusive, mod 24), ``count``,
    ``expected``, ``ratio`` and ``p`` (smallest adjusted p inside).
    """
    if expected not in EXPECTED:
        raise InputError(f"expected must be one of {EXPECTED}, got {expected!r}")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (24, 7):
        raise InputError(f"a time matrix is 24 hours x 7 weekdays, got shape {m.shape}")
    n = m.sum()
    if n == 0:
        return []
    if expected == "uniform":
        q = np.full((24, 7), 1 / 168)
    else:
        q = np.outer(m.sum(axis=1), m.sum(axis=0)) / n**2
    exp = n * q
    p = stats.binom.sf(m - 1, n, q)
    if fdr:
        p = stats.false_discovery_control(p.ravel(), method="bh").reshape(24, 7)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (p <= alpha) & (m / exp >= min_ratio)
    out = []
    for comp in _components(keep):
        hours = sorted({h for h, _ in comp})
        days = sorted({d for _, d in comp})
        start, end = _hour_span(hours)
        obs = sum(m[h, d] for h, d in comp)
        ex = sum(exp[h, d] for h, d in comp)
        out.append({
            "days": days,
            "start_hour": start,
            "end_hour": end,
            "count": int(obs),
            "expected": round(float(ex), 2),
            "ratio": round(float(obs / ex), 3),
            "p": float(min(p[h, d] for h, d in comp)),
        })
    out.sort(key=lambda pk: pk["count"] - pk["expected"], reverse=True)
    return out[:max_peaks]


def describe_peaks(found: list[dict], subject: str, lang: str = "en") -> str:
    """Peaks in words: "disputes peak Fri–Sat 19:00–23:00" / "邻里纠纷高发于周五至周六 19:00–23:00"."""
    if lang not in ("en", "zh-CN"):
        raise InputError(f"lang must be 'en' or 'zh-CN', got {lang!r}")
    zh = lang == "zh-CN"
    if not found:
        return f"{subject}无明显高发时段" if zh else f"{subject} show no significant peak"
    parts = [f"{_days_words(pk['days'], zh)} {pk['start_hour']:02d}:00–{pk['end_hour']:02d}:00" for pk in found]
    if zh:
        return f"{subject}高发于" + "、".join(parts)
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{subject} peak {joined}"


def time_patterns(
    incidents: pd.DataFrame,
    by: str | None = "category",
    labels: dict[str, dict[str, str]] | None = None,
    **peak_kw,
) -> dict:
    """JSON-able time patterns: citywide, and per category or grid (``by`` names the column).

    ``labels`` maps a group key to ``{"en": ..., "zh-CN": ...}`` names used in the sentences.
    """
    labels = labels or {}
    groups = time_matrix(incidents, by) if by is not None else {}
    out = {
        "weekdays": DAYS_EN,
        "weekdays_zh": DAYS_ZH,
        "by": by,
        "citywide": _entry(time_matrix(incidents), {"en": "incidents", "zh-CN": "警情"}, peak_kw),
        "groups": {},
    }
    for key, mat in groups.items():
        name = labels.get(key, {"en": key, "zh-CN": key})
        out["groups"][key] = _entry(mat, name, peak_kw)
    return out


def plot_heatmap(matrix: pd.DataFrame, path, title: str = "", found: list[dict] | None = None) -> Path:
    """Write a heatmap PNG of a 24 x 7 matrix (English labels: CJK fonts may be absent).

    Uses the Agg canvas directly, so no global matplotlib backend is changed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    m = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(5.5, 7), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(m, aspect="auto", cmap="YlOrRd", origin="upper")
    ax.set_xticks(range(7), DAYS_EN)
    ax.set_yticks(range(0, 24, 2), [f"{h:02d}:00" for h in range(0, 24, 2)])
    ax.set_xlabel("weekday")
    ax.set_ylabel("hour")
    ax.set_title(title or "incidents by hour and weekday")
    for pk in found or []:
        hrs = _span_hours(pk["start_hour"], pk["end_hour"])
        for d in pk["days"]:
            for h in hrs:
                ax.add_patch(Rectangle((d - 0.5, h - 0.5), 1, 1, fill=False, edgecolor="black", lw=0.8))
    fig.colorbar(im, ax=ax, label="incidents")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _entry(mat: pd.DataFrame, name: dict[str, str], peak_kw: dict) -> dict:
    found = peaks(mat, **peak_kw)
    return {
        "total": int(np.asarray(mat).sum()),
        "matrix": np.asarray(mat, dtype=int).tolist(),
        "peaks": found,
        "text": {lang: describe_peaks(found, name[lang], lang) for lang in ("en", "zh-CN")},
    }


def _components(keep: np.ndarray) -> list[list[tuple[int, int]]]:
    # a BFS over at most 168 cells; scipy.ndimage.label cannot wrap 23:00->00:00 or Sun->Mon
    seen = np.zeros_like(keep, dtype=bool)
    comps = []
    for h0, d0 in zip(*np.nonzero(keep)):
        if seen[h0, d0]:
            continue
        stack, comp = [(int(h0), int(d0))], []
        seen[h0, d0] = True
        while stack:
            h, d = stack.pop()
            comp.append((h, d))
            for nh, nd in (((h + 1) % 24, d), ((h - 1) % 24, d), (h, (d + 1) % 7), (h, (d - 1) % 7)):
                if keep[nh, nd] and not seen[nh, nd]:
                    seen[nh, nd] = True
                    stack.append((nh, nd))
        comps.append(comp)
    return comps


def _hour_span(hours: list[int]) -> tuple[int, int]:
    """Shortest circular span covering the hours: (start, end exclusive), both mod 24."""
    if len(hours) == 24:
        return 0, 0
    hs = sorted(hours)
    gaps = [((hs[(i + 1) % len(hs)] - hs[i]) % 24, i) for i in range(len(hs))]
    _, i = max(gaps)  # the largest gap lies outside the span
    return hs[(i + 1) % len(hs)], (hs[i] + 1) % 24


def _span_hours(start: int, end: int) -> list[int]:
    length = (end - start) % 24 or 24
    return [(start + i) % 24 for i in range(length)]


def _days_words(days: list[int], zh: bool) -> str:
    names = DAYS_ZH if zh else DAYS_EN
    if len(days) == 7:
        return "每天" if zh else "daily"
    runs, ds = [], set(days)
    # start runs at a day whose predecessor is not included, so Sat–Mon stays one run
    for d in sorted(ds):
        if (d - 1) % 7 in ds:
            continue
        end = d
        while (end + 1) % 7 in ds:
            end = (end + 1) % 7
        runs.append((d, end))
    sep = "至" if zh else "–"
    words = [names[a] if a == b else f"{names[a]}{sep}{names[b]}" for a, b in runs]
    return ("、" if zh else ", ").join(words)
