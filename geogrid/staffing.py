"""Staffing: how many officers and auxiliaries each grid needs, and who gets the staff there are.

Requirement (:func:`staffing_requirement`), per grid, for officers and auxiliaries separately::

    required = max(hard minimum, tier table, workload need)  (+ key-area auxiliary)

*Workload* (hours a year): incidents × hours per incident of their category (annualised), plus
officer patrol time — 3 h a day of walking in urban grids, 2 on-site visits a week in rural grids.
Officers do the patrols and ``officer_share_of_incidents`` of the incident hours; auxiliaries the
rest. A need of ``x`` posts becomes ``floor(x + 1 - round_up_from)`` people (0.5: round half up),
so a rural grid whose visits take 0.16 of a post shares its officer (一警多村).

Allocation (:func:`allocate`) of a fixed headcount, totals always equal to the headcount:

1. Hard minimums, grids in priority order (tier 1 first, then heavier workload): urban grids 1
   officer; rural grids 1 auxiliary (an officer when auxiliaries are needed for key areas or run
   out); key-area grids +1 auxiliary. Whenever staff suffice all minimums are met; when they do
   not, the grids last in priority order (lowest tier complexity and workload) go without, and say so.
2. The remaining staff by highest averages (D'Hondt) on unmet need: the next officer goes to the
   grid with the largest ``need / (allocated + 1)``, need = max(required, workload posts), among
   grids below their requirement — a tier-1 grid's larger table pulls officers to it first.
3. Staff left once every requirement is met are surplus: they go on by D'Hondt on workload alone.

With fewer officers than urban grids (860 grids, 320 officers) the highest-priority grids get an
officer of their own and the others say "no own officer"; grouping those into beats shared by one
officer is the beats module's job (:mod:`geogrid.beats`).
"""
from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from geogrid.errors import InputError
from geogrid.policy import StaffingPolicy

FLAG_ZH = {"old_compound": "老旧小区", "commercial_street": "商业街区", "urban_village": "城中村"}
WEEKS_PER_YEAR = 52


def staffing_requirement(features: pd.DataFrame, tiers: pd.Series,
                         policy: StaffingPolicy | None = None) -> pd.DataFrame:
    """Officers and auxiliaries each grid requires, its workload, and which rule bound.

    Parameters
    ----------
    features : output of :func:`geogrid.features.grid_features` (indexed by grid code).
    tiers : Series of tiers (1 = most complex) indexed by grid code, e.g. ``Tiering(...).tiers_``.
    policy : staffing policy; default :meth:`StaffingPolicy.default`.

    Returns
    -------
    DataFrame indexed by ``code``: kind, tier, key_area, incident_hours, patrol_hours,
    workload_hours, officer_fte, auxiliary_fte, min_officers, min_auxiliaries, min_either,
    officers_required, auxiliaries_required, grid_workers, volunteers, reasons_en, reasons_zh.
    """
    policy = policy or StaffingPolicy.default()
    _check(features, tiers, policy)
    w, m = policy.workload, policy.minimums
    years = features["period_days"].to_numpy(dtype=float) / 365.0
    counts = [c for c in features.columns if c.startswith("n_") and c != "n_key_areas"]
    incident_hours = sum((features[c].to_numpy(dtype=float) * w.hours(c[2:]) for c in counts),
                         np.zeros(len(features))) / years
    urban = (features["kind"] == "urban").to_numpy()
    patrol = np.where(urban, w.walking_hours_per_day * w.officer_days_per_year,
                      w.rural_visits_per_week * WEEKS_PER_YEAR * w.rural_visit_hours)
    officer_fte = (patrol + w.officer_share_of_incidents * incident_hours) / w.officer_hours_per_year
    aux_fte = (1 - w.officer_share_of_incidents) * incident_hours / w.auxiliary_hours_per_year
    flags = [f for f in m.key_area_flags if f"key_{f}" in features]
    key = features[[f"key_{f}" for f in flags]].to_numpy(dtype=bool) if flags else np.zeros((len(features), 0), bool)

    tier = tiers.reindex(features.index).to_numpy(dtype=int)
    rows = []
    for i, code in enumerate(features.index):
        kind = "urban" if urban[i] else "rural"
        staff = policy.tier_staff(kind, tier[i])
        key_flags = [f for f, k in zip(flags, key[i]) if k]
        rows.append(_one_grid(code, kind, tier[i], staff, key_flags, officer_fte[i], aux_fte[i], policy))
    out = pd.DataFrame(rows).set_index("code")
    out.insert(2, "incident_hours", incident_hours)
    out.insert(3, "patrol_hours", patrol)
    out.insert(4, "workload_hours", incident_hours + patrol)
    out.insert(5, "officer_fte", officer_fte)
    out.insert(6, "auxiliary_fte", aux_fte)
    return out


def _one_grid(code, kind, tier, staff, key_flags, off_fte, aux_fte, policy) -> dict:
    m, w = policy.minimums, policy.workload
    lift = 1 - w.round_up_from
    min_off = m.urban_officers if kind == "urban" else 0
    min_aux = m.key_area_extra_auxiliaries if key_flags else 0
    min_either = m.rural_officers_or_auxiliaries if kind == "rural" else 0
    wl_off, wl_aux = int(np.floor(off_fte + lift)), int(np.floor(aux_fte + lift))
    officers = max(min_off, staff.officers, wl_off)
    base_aux = max(staff.auxiliaries, wl_aux)
    auxiliaries = base_aux + min_aux
    extra_rural = max(0, min_either - officers - auxiliaries)  # rural minimum met by an auxiliary
    auxiliaries += extra_rural

    def bound(value, rules):  # the rules that reach the value
        return [r for v, r in rules if v == value and value > 0]

    o_rules = bound(officers, [(min_off, ("urban minimum", "城市网格最低配置")),
                               (staff.officers, (f"tier {tier} table", f"{tier}级配比")),
                               (wl_off, (f"workload {off_fte:.2f} posts", f"工作量{off_fte:.2f}人"))])
    a_rules = bound(base_aux, [(staff.auxiliaries, (f"tier {tier} table", f"{tier}级配比")),
                               (wl_aux, (f"workload {aux_fte:.2f} posts", f"工作量{aux_fte:.2f}人"))])
    if min_aux:
        a_rules.append((f"+{min_aux} key area ({', '.join(key_flags)})",
                        f"重点区域（{'、'.join(FLAG_ZH.get(f, f) for f in key_flags)}）加{min_aux}"))
    if extra_rural:
        a_rules.append(("rural minimum (officer or auxiliary)", "农村网格最低配置（民警或辅警）"))
    en = (f"officers {officers}: {', '.join(r[0] for r in o_rules) or 'none required'}; "
          f"auxiliaries {auxiliaries}: {', '.join(r[0] for r in a_rules) or 'none required'}")
    zh = (f"民警{officers}名：{'、'.join(r[1] for r in o_rules) or '无要求'}；"
          f"辅警{auxiliaries}名：{'、'.join(r[1] for r in a_rules) or '无要求'}")
    return {"code": code, "kind": kind, "tier": tier, "key_area": bool(key_flags),
            "min_officers": min_off, "min_auxiliaries": min_aux, "min_either": min_either,
            "officers_required": officers, "auxiliaries_required": auxiliaries,
            "grid_workers": staff.grid_workers, "volunteers": staff.volunteers,
            "reasons_en": en, "reasons_zh": zh}


def requirement_summary(requirement: pd.DataFrame, officers: int | None = None,
                        auxiliaries: int | None = None) -> pd.DataFrame:
    """Citywide requirement against available staff.

    Returns a DataFrame indexed by ``staff`` ('officers', 'auxiliaries') with ``hard_minimum``
    (rural grids' "officer or auxiliary" counted under auxiliaries), ``required``, ``workload_posts``
    (sum of fractional workload), ``available``, ``shortfall`` and ``minimum_shortfall``
    (both >= 0; NaN when availability is not given).
    """
    r = requirement
    rows = {
        "officers": (r["min_officers"].sum(), r["officers_required"].sum(), r["officer_fte"].sum(), officers),
        "auxiliaries": ((r["min_auxiliaries"] + r["min_either"]).sum(), r["auxiliaries_required"].sum(),
                        r["auxiliary_fte"].sum(), auxiliaries),
    }
    out = pd.DataFrame.from_dict(rows, orient="index",
                                 columns=["hard_minimum", "required", "workload_posts", "available"])
    out.index.name = "staff"
    out["available"] = out["available"].astype(float)
    out["shortfall"] = (out["required"] - out["available"]).clip(lower=0)
    out["minimum_shortfall"] = (out["hard_minimum"] - out["available"]).clip(lower=0)
    return out


def _check(features: pd.DataFrame, tiers: pd.Series, policy: StaffingPolicy) -> None:
    missing = [c for c in ("kind", "period_days") if c not in features]
    if missing:
        raise InputError(f"features lack column(s) {missing}; build them with grid_features()")
    if not isinstance(tiers, pd.Series):
        raise InputError("tiers must be a Series of tiers indexed by grid code (Tiering.tiers_)")
    absent = features.index.difference(tiers.index)
    if len(absent):
        raise InputError(f"{len(absent)} grid(s) have no tier, e.g. {absent[0]!r}")
    bad = ~tiers.reindex(features.index).isin(range(1, policy.n_tiers + 1))
    if bad.any():
        raise InputError(f"tiers must be integers 1..{policy.n_tiers}; grid {bad.idxmax()!r} has "
                         f"{tiers[bad.idxmax()]!r}")



def allocate(requirement: pd.DataFrame, officers: int, auxiliaries: int) -> pd.DataFrame:
    """Allocate a fixed headcount of officers and auxiliaries to grids (integers).

    Parameters
    ----------
    requirement : output of :func:`staffing_requirement` (tiers, workload and minimums included).
    officers, auxiliaries : headcounts to allocate; the totals of the result equal them exactly.

    Returns
    -------
    DataFrame indexed by ``code``: officers, auxiliaries, officers_required, auxiliaries_required,
    officers_short, auxiliaries_short, priority (1 = served first), reason_en, reason_zh.
    """
    for name, value in (("officers", officers), ("auxiliaries", auxiliaries)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name} must be a whole number >= 0, got {value!r}")
    need = ["tier", "kind", "workload_hours", "officer_fte", "auxiliary_fte", "min_officers",
            "min_auxiliaries", "min_either", "officers_required", "auxiliaries_required"]
    missing = [c for c in need if c not in requirement]
    if missing:
        raise InputError(f"requirement lacks column(s) {missing}; build it with staffing_requirement()")
    r = requirement.sort_values(["tier", "workload_hours"], ascending=[True, False], kind="stable")
    n = len(r)
    a = _Alloc(n, int(officers), int(auxiliaries))
    _minimums(r, a)
    off_req, aux_req = r["officers_required"].to_numpy(), r["auxiliaries_required"].to_numpy()
    for staff, req, fte in (("off", off_req, r["officer_fte"].to_numpy()),
                            ("aux", aux_req, r["auxiliary_fte"].to_numpy())):
        given = a.off if staff == "off" else a.aux
        left = a.off_left if staff == "off" else a.aux_left
        by_need = _dhondt(given, np.maximum(req, fte), left, cap=req)
        given += by_need
        left -= by_need.sum()
        surplus = _dhondt(given, fte + 1e-9, left, cap=None)  # 1e-9: grids with no workload still rank
        given += surplus
        for i in np.flatnonzero(by_need):
            a.note(i, *((f"+{by_need[i]} officer(s) by need (tier, workload)", f"按等级与工作量加配民警{by_need[i]}名")
                        if staff == "off" else
                        (f"+{by_need[i]} auxiliary(ies) by need (tier, workload)", f"按等级与工作量加配辅警{by_need[i]}名")))
        for i in np.flatnonzero(surplus):
            a.note(i, *((f"+{surplus[i]} surplus officer(s) by workload", f"富余民警按工作量加配{surplus[i]}名")
                        if staff == "off" else
                        (f"+{surplus[i]} surplus auxiliary(ies) by workload", f"富余辅警按工作量加配{surplus[i]}名")))
    short_o, short_a = np.maximum(off_req - a.off, 0), np.maximum(aux_req - a.aux, 0)
    for i in range(n):
        if short_o[i] or short_a[i]:
            a.note(i, f"short of requirement by {short_o[i]} officer(s), {short_a[i]} auxiliary(ies)",
                   f"较需求缺民警{short_o[i]}名、辅警{short_a[i]}名")
        else:
            a.note(i, "requirement met", "满足配置需求")
    out = pd.DataFrame({"officers": a.off, "auxiliaries": a.aux, "officers_required": off_req,
                        "auxiliaries_required": aux_req, "officers_short": short_o,
                        "auxiliaries_short": short_a, "priority": np.arange(1, n + 1),
                        "reason_en": ["; ".join(e for e, _ in notes) for notes in a.notes],
                        "reason_zh": ["；".join(z for _, z in notes) for notes in a.notes]},
                       index=r.index)
    return out.reindex(requirement.index)


class _Alloc:
    """Running allocation: counts given so far, staff left, and each grid's notes (en, zh)."""

    def __init__(self, n: int, officers: int, auxiliaries: int) -> None:
        self.off, self.aux = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        self.off_left, self.aux_left = officers, auxiliaries
        self.notes: list[list[tuple[str, str]]] = [[] for _ in range(n)]

    def note(self, i: int, en: str, zh: str) -> None:
        self.notes[i].append((en, zh))


def _minimums(r: pd.DataFrame, a: _Alloc) -> None:
    """Step 1: hard minimums in priority order (rows of ``r`` are already in that order)."""
    min_off, min_aux, min_either = (r[c].to_numpy() for c in ("min_officers", "min_auxiliaries", "min_either"))
    for i in np.flatnonzero(min_off):
        k = min(min_off[i], a.off_left)
        a.off[i] += k
        a.off_left -= k
        if k == min_off[i]:
            a.note(i, f"urban minimum: {k} officer", f"城市网格最低配置：民警{k}名")
        else:
            a.note(i, "no own officer: officers run short and this grid is low in tier and workload "
                      "(to be covered by a beat officer)", "无专属民警：警力不足，本网格等级与工作量较低（由片区民警兼管）")
    # Auxiliaries go to rural minimums only as far as the key-area extras leave room, so that the
    # officers left over can fill rural grids instead whenever the totals suffice.
    reserve = int(min_aux.sum())
    for i in np.flatnonzero(min_either):
        k = min_either[i]
        if a.aux_left - reserve >= k or (a.off_left < k and a.aux_left >= k):
            a.aux[i] += k
            a.aux_left -= k
            a.note(i, f"rural minimum: {k} auxiliary", f"农村网格最低配置：辅警{k}名")
        elif a.off_left >= k:
            a.off[i] += k
            a.off_left -= k
            a.note(i, f"rural minimum: {k} officer (auxiliaries reserved for key areas)",
                   f"农村网格最低配置：民警{k}名（辅警留作重点区域）")
        else:
            a.note(i, "unstaffed: staff run short and this grid is low in tier and workload",
                   "暂无配置：警力不足，本网格等级与工作量较低")
    for i in np.flatnonzero(min_aux):
        k = min(min_aux[i], a.aux_left)
        a.aux[i] += k
        a.aux_left -= k
        if k == min_aux[i]:
            a.note(i, f"key area: +{k} auxiliary", f"重点区域加配辅警{k}名")
        else:
            a.note(i, "key-area auxiliary not given: auxiliaries run short", "重点区域加配辅警未落实：辅警不足")


def _dhondt(given: np.ndarray, weight: np.ndarray, seats: int, cap: np.ndarray | None) -> np.ndarray:
    """Highest-averages seats: each goes to the largest ``weight / (given + 1)``; ties by row order.

    Hand-written: a heap over at most a few thousand seats; no library allocates with caps.
    """
    extra = np.zeros_like(given)
    open_ = np.arange(len(given)) if cap is None else np.flatnonzero(given < cap)
    heap = [(-weight[i] / (given[i] + 1), i) for i in open_ if weight[i] > 0]
    heapq.heapify(heap)
    while seats > 0 and heap:
        _, i = heapq.heappop(heap)
        extra[i] += 1
        seats -= 1
        if cap is None or given[i] + extra[i] < cap[i]:
            heapq.heappush(heap, (-weight[i] / (given[i] + extra[i] + 1), i))
    return extra
