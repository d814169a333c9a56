"""Which column of an input file holds what: the field mapping (CLI options or a profile file)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from geogrid.errors import InputError


@dataclass(frozen=True)
class FieldMap:
    """Column names in the input file. ``None`` means: not in the file (use the default)."""

    id: str | None = None
    lon: str | None = None
    lat: str | None = None
    time: str | None = None
    category: str | None = None
    priority: str | None = None
    origin: str | None = None
    code: str | None = None
    name: str | None = None
    kind: str | None = None
    population: str | None = None
    key_areas: str | None = None
    post: str | None = None
    district: str | None = None
    station: str | None = None
    role: str | None = None
    grid: str | None = None

    def merged(self, **overrides) -> "FieldMap":
        """A copy with the non-None overrides applied (CLI flags beat the profile)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Profile:
    """A saved ingest set-up for one data source: fields, CRS, time zone, source name, categories."""

    fields: FieldMap = field(default_factory=FieldMap)
    crs: str | None = None
    timezone: str | None = None
    source: str | None = None
    category_map: str | None = None
    defaults: dict = field(default_factory=dict)  # constant values for absent columns, e.g. kind
    merge_parts: bool = False  # grids: rows sharing a code are parts of one multi-part grid

    @classmethod
    def from_file(cls, path: str | Path, kind: str) -> "Profile":
        """Read section ``[kind]`` (grids, incidents, posts, staff) of a TOML profile."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"profile {path}: {e}") from e
        if kind not in doc:
            raise InputError(f"profile {path} has no [{kind}] section (it has: {', '.join(doc)})")
        sec = dict(doc[kind])
        known = {f.name for f in fields(FieldMap)}
        fmap = sec.pop("fields", {})
        bad = set(fmap) - known
        if bad:
            raise InputError(f"profile {path} [{kind}.fields]: unknown keys {sorted(bad)}; known: {sorted(known)}")
        cm = sec.pop("category_map", None)
        if cm is not None and not Path(cm).is_absolute():
            cm = str((path.parent / cm).resolve())
        prof = cls(
            fields=FieldMap(**fmap),
            crs=sec.pop("crs", None),
            timezone=sec.pop("timezone", None),
            source=sec.pop("source", None),
            category_map=cm,
            defaults=sec.pop("defaults", {}),
            merge_parts=bool(sec.pop("merge_parts", False)),
        )
        if sec:
            raise InputError(f"profile {path} [{kind}]: unknown keys {sorted(sec)}")
        return prof
