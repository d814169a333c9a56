"""The staffing policy (警力配置): minimums, the tier → staffing table, the workload model.

The defaults live in ``geogrid/data/staffing_policy.toml``, each value commented with the rule of
the source plan it comes from. A deployment overrides any subset of it with its own TOML file
(:meth:`StaffingPolicy.from_file`): values are merged over the defaults, unknown keys and bad
values raise :class:`~geogrid.errors.InputError` naming the key.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geogrid.errors import InputError

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "staffing_policy.toml"
KINDS = ("urban", "rural")


@dataclass(frozen=True)
class Minimums:
    """Hard minimums per grid."""

    urban_officers: int = 1
    rural_officers_or_auxiliaries: int = 1
    key_area_extra_auxiliaries: int = 1
    key_area_flags: tuple[str, ...] = ("old_compound", "commercial_street", "urban_village")


@dataclass(frozen=True)
class TierStaff:
    """Staffing of one tier; grid workers and volunteers are reported, not allocated."""

    officers: int
    auxiliaries: int
    grid_workers: int = 0
    volunteers: int = 0


@dataclass(frozen=True)
class Workload:
    """Hours model: incidents, walking (urban), on-site visits (rural), and a post's hours."""

    officer_hours_per_day: float = 8.0
    officer_days_per_year: int = 250
    auxiliary_hours_per_day: float = 8.0
    auxiliary_days_per_year: int = 250
    walking_hours_per_day: float = 3.0
    rural_visits_per_week: int = 2
    rural_visit_hours: float = 3.0
    officer_share_of_incidents: float = 0.5
    round_up_from: float = 0.5
    default_hours_per_incident: float = 1.5
    hours_per_incident: dict[str, float] = field(default_factory=dict)

    @property
    def officer_hours_per_year(self) -> float:
        return self.officer_hours_per_day * self.officer_days_per_year

    @property
    def auxiliary_hours_per_year(self) -> float:
        return self.auxiliary_hours_per_day * self.auxiliary_days_per_year

    def hours(self, category: str) -> float:
        """Hours of grid work per incident of ``category``."""
        return self.hours_per_incident.get(category, self.default_hours_per_incident)


@dataclass(frozen=True)
class Response:
    """Response deadlines in minutes (used by coverage)."""

    urgent_minutes: float = 15
    ordinary_minutes: float = 120
    tier1_minutes: float = 5


@dataclass(frozen=True)
class StaffingPolicy:
    """A staffing policy; build with :meth:`default` or :meth:`from_file`.

    Examples
    --------
    >>> p = StaffingPolicy.default()
    >>> p.tier_staff("urban", 1).auxiliaries
    3
    >>> p.workload.officer_hours_per_year
    2000.0
    """

    minimums: Minimums
    tiers: dict[str, dict[int, TierStaff]]
    workload: Workload
    response: Response

    @classmethod
    def default(cls) -> StaffingPolicy:
        """The plan's defaults (``geogrid/data/staffing_policy.toml``)."""
        return cls.from_dict(_read(DEFAULT_FILE))

    @classmethod
    def from_file(cls, path: str | Path) -> StaffingPolicy:
        """Defaults overridden by the TOML file at ``path``."""
        return cls.from_dict(_merge(_read(DEFAULT_FILE), _read(Path(path))))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StaffingPolicy:
        """Build and validate from a complete nested dict (the TOML's shape)."""
        _known(data, {"minimums", "tiers", "workload", "response"}, "")
        tiers = _tiers(data.get("tiers", {}))
        policy = cls(minimums=_section(Minimums, data.get("minimums", {}), "minimums"), tiers=tiers,
                     workload=_section(Workload, data.get("workload", {}), "workload"),
                     response=_section(Response, data.get("response", {}), "response"))
        w = policy.workload
        if not 0 <= w.officer_share_of_incidents <= 1:
            raise InputError("workload.officer_share_of_incidents must lie in [0, 1]")
        if not 0 < w.round_up_from <= 1:
            raise InputError("workload.round_up_from must lie in (0, 1]")
        if w.officer_hours_per_year <= 0 or w.auxiliary_hours_per_year <= 0:
            raise InputError("workload: hours per day and days per year must be > 0")
        return policy

    @property
    def n_tiers(self) -> int:
        return len(self.tiers["urban"])

    def tier_staff(self, kind: str, tier: int) -> TierStaff:
        """Staffing of ``tier`` for a grid of ``kind``."""
        try:
            return self.tiers[kind][int(tier)]
        except KeyError:
            raise InputError(f"the policy has no tier {tier!r} for {kind!r} grids "
                             f"(tiers 1..{self.n_tiers})") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"staffing policy file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"staffing policy {path} is not valid TOML: {exc}") from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _known(data: Any, keys: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise InputError(f"'{where}' must be a table")
    unknown = sorted(set(data) - keys)
    if unknown:
        at = f"{where}." if where else ""
        raise InputError(f"unknown key '{at}{unknown[0]}' in the staffing policy; known: {sorted(keys)}")


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    # Hand-written rather than pydantic: a dozen fields, and errors must name the TOML key path.
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _known(data, set(fields), where)
    values = {}
    for name, value in data.items():
        key, kind = f"{where}.{name}", fields[name].type
        if kind == "tuple[str, ...]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{key} must be a list of strings, got {value!r}")
            values[name] = tuple(value)
        elif kind == "dict[str, float]":
            _known(value, set(value) if isinstance(value, dict) else set(), key)
            values[name] = {k: _number(v, f"{key}.{k}", float) for k, v in value.items()}
        else:
            values[name] = _number(value, key, int if kind == "int" else float)
    return cls(**values)


def _number(value: Any, key: str, kind: type) -> float | int:
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < 0 or value != value:
        what = "a whole number" if kind is int else "a number"
        raise InputError(f"{key} must be {what} >= 0, got {value!r}")
    return kind(value)


def _tiers(data: dict[str, Any]) -> dict[str, dict[int, TierStaff]]:
    _known(data, set(KINDS), "tiers")
    out: dict[str, dict[int, TierStaff]] = {}
    for kind in KINDS:
        table = data.get(kind)
        if not table:
            raise InputError(f"tiers.{kind} is missing: give a staffing table for {kind} grids")
        _known(table, {str(i) for i in range(1, len(table) + 1)}, f"tiers.{kind}")  # tiers 1..n
        out[kind] = {int(t): _section(TierStaff, staff, f"tiers.{kind}.{t}") for t, staff in table.items()}
    if len(out["urban"]) != len(out["rural"]):
        raise InputError(f"tiers.urban ({len(out['urban'])} tiers) and tiers.rural ({len(out['rural'])}) "
                         "must list the same tiers")
    return out
