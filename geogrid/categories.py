"""Incident categories: the canonical codes, their zh/en labels, default priority and severity.

Source systems name categories in many ways ("BATTERY", "殴打", " Theft "). :class:`CategoryMap`
maps them to one set of canonical codes (``geogrid/data/categories.toml``): values are
normalised (NFKC, outer whitespace stripped, inner whitespace collapsed, casefolded) and looked up
among each code's aliases, the code itself and its two labels. Values that match nothing map to
``'other'`` and are reported in an ``unknown`` mask so that ingest can warn about them.

A deployment extends the defaults with a file (:meth:`CategoryMap.from_file`):

* a TOML of the same shape as the defaults: entries for existing codes add aliases or override
  fields, new codes need ``zh`` and ``en`` labels (``priority`` defaults to 'normal', ``severity``
  to 1.0);
* a CSV with a header ``source,code`` (and optionally ``zh,en,priority,severity`` to add a new code
  on the line that first names it). UTF-8 (with or without BOM) or GB18030, as Excel writes it.

An alias given in a file takes precedence over the same alias of a default code.
"""
from __future__ import annotations

import csv
import math
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from geogrid.errors import InputError

__all__ = ["Category", "CategoryMap", "DEFAULT_FILE", "PRIORITIES", "OTHER"]

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "categories.toml"
PRIORITIES = ("urgent", "normal")
OTHER = "other"
LANGS = ("zh", "en")
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def normalise(value: object) -> str:
    """Normal form used for matching: NFKC, whitespace stripped and collapsed, casefolded.

    NFKC folds full-width letters and the ideographic space that Chinese input methods produce.
    """
    return " ".join(unicodedata.normalize("NFKC", str(value)).split()).casefold()


@dataclass(frozen=True)
class Category:
    """One canonical category: code, zh/en labels, default priority and severity, aliases."""

    code: str
    zh: str
    en: str
    priority: str = "normal"
    severity: float = 1.0
    aliases: tuple[str, ...] = ()


class CategoryMap:
    """Canonical incident categories and the map from source strings to codes.

    Parameters
    ----------
    categories
        The categories, in display order. Must include ``'other'``.

    Examples
    --------
    >>> cmap = CategoryMap.default()
    >>> codes, unknown = cmap.map(pd.Series(["BATTERY", " 盗窃 ", "飞碟"]))
    >>> codes.tolist(), unknown.tolist()
    (['assault', 'theft', 'other'], [False, False, True])
    >>> cmap.label("theft", "zh"), cmap.priority("homicide")
    ('盗窃', 'urgent')
    """

    def __init__(self, categories: Iterable[Category]) -> None:
        self._cats: dict[str, Category] = {}
        for cat in categories:
            _check_category(cat)
            if cat.code in self._cats:
                raise InputError(f"category code {cat.code!r} is defined twice")
            self._cats[cat.code] = cat
        if OTHER not in self._cats:
            raise InputError(f"the category map must define the fallback code {OTHER!r}")
        self._lookup: dict[str, str] = {}
        for cat in self._cats.values():
            for alias in (cat.code, cat.zh, cat.en, *cat.aliases):
                key = normalise(alias)
                if self._lookup.setdefault(key, cat.code) != cat.code:
                    raise InputError(f"alias {alias!r} maps to both {self._lookup[key]!r} and "
                                     f"{cat.code!r}; keep it under one code")

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def default(cls) -> CategoryMap:
        """The categories shipped with geogrid (``geogrid/data/categories.toml``)."""
        return cls(_default_categories())

    @classmethod
    def from_file(cls, path: str | Path, extend: bool = True) -> CategoryMap:
        """Categories from a TOML (same shape as the defaults) or a ``source,code`` CSV.

        Parameters
        ----------
        path
            ``.toml`` or ``.csv`` file.
        extend
            True (default): the file extends the defaults. False: a TOML file is the whole map
            (a CSV always extends).

        Raises
        ------
        InputError
            Unreadable file, missing columns, or a new code without labels; names the line.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"category file {str(path)!r} does not exist")
        is_csv = path.suffix.lower() == ".csv"
        base = dict(_default_categories_by_code()) if extend or is_csv else {}
        if path.suffix.lower() == ".toml":
            cats = _merge_toml(base, path)
        elif is_csv:
            cats = _merge_csv(base, path)
        else:
            raise InputError(f"category file must be .toml or .csv, got {path.name!r}")
        return cls(cats.values())

    # --- mapping ---------------------------------------------------------------------------------

    def map(self, values: pd.Series | Iterable[object]) -> tuple[pd.Series, np.ndarray]:
        """Map source category strings to codes.

        Returns
        -------
        codes : pd.Series
            Canonical code per value (same index as ``values``, named 'category'); unknown or
            missing values get ``'other'``.
        unknown_mask : np.ndarray of bool
            True where the value matched no alias (including missing values).
        """
        values = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        # Normalise each distinct value once: a million rows hold a few dozen category strings.
        idx, uniques = pd.factorize(values, use_na_sentinel=True)
        found = np.array([self._lookup.get(normalise(u)) for u in uniques] + [None], dtype=object)
        hits = found[idx]  # idx == -1 (missing) picks the trailing None
        unknown = pd.isna(hits)
        codes = np.where(unknown, OTHER, hits)
        return pd.Series(codes, index=values.index, name="category", dtype="str"), unknown

    def code_of(self, value: object) -> str | None:
        """Code of one source string, or None if it matches nothing."""
        return self._lookup.get(normalise(value))

    # --- lookups ---------------------------------------------------------------------------------

    @property
    def codes(self) -> tuple[str, ...]:
        """All codes, in display order."""
        return tuple(self._cats)

    def __contains__(self, code: object) -> bool:
        return code in self._cats

    def __len__(self) -> int:
        return len(self._cats)

    def category(self, code: str) -> Category:
        """The :class:`Category` of ``code``; InputError listing the codes if unknown."""
        try:
            return self._cats[code]
        except (KeyError, TypeError):
            raise InputError(f"unknown category code {code!r}; known codes: "
                             f"{', '.join(self._cats)}") from None

    def label(self, code: str, lang: str = "zh") -> str:
        """Label of ``code`` in ``lang`` ('zh' or 'en')."""
        if lang not in LANGS:
            raise InputError(f"lang must be one of {LANGS}, got {lang!r}")
        return getattr(self.category(code), lang)

    def priority(self, code: str) -> str:
        """Default priority of ``code``: 'urgent' or 'normal'."""
        return self.category(code).priority

    def severity(self, code: str) -> float:
        """Default severity weight of ``code`` (homicide highest)."""
        return self.category(code).severity

    def to_frame(self) -> pd.DataFrame:
        """One row per code: code, zh, en, priority, severity (display order)."""
        return pd.DataFrame(
            [(c.code, c.zh, c.en, c.priority, float(c.severity)) for c in self._cats.values()],
            columns=["code", "zh", "en", "priority", "severity"],
        )


# --- private steps -------------------------------------------------------------------------------

def _check_category(cat: Category, where: str = "") -> None:
    at = f"{where}: " if where else ""
    if not isinstance(cat.code, str) or not _CODE_RE.match(cat.code):
        raise InputError(f"{at}category code {cat.code!r} must be lower-case letters, digits, '_'")
    for lang in LANGS:
        if not isinstance(getattr(cat, lang), str) or not getattr(cat, lang).strip():
            raise InputError(f"{at}category {cat.code!r} needs a non-empty {lang!r} label")
    if cat.priority not in PRIORITIES:
        raise InputError(f"{at}category {cat.code!r}: priority must be one of {PRIORITIES}, "
                         f"got {cat.priority!r}")
    sev = cat.severity
    if isinstance(sev, bool) or not isinstance(sev, (int, float)) or not (math.isfinite(sev)
                                                                         and sev >= 0):
        raise InputError(f"{at}category {cat.code!r}: severity must be a number >= 0, got {sev!r}")


@lru_cache(maxsize=1)
def _default_categories() -> tuple[Category, ...]:
    return tuple(_merge_toml({}, DEFAULT_FILE).values())


def _default_categories_by_code() -> dict[str, Category]:
    return {c.code: c for c in _default_categories()}


def _header_line(text: str, code: str) -> int | None:
    pat = re.compile(rf"^[ \t]*\[\s*categories\.\"?{re.escape(code)}\"?\s*\]", re.MULTILINE)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _merge_toml(base: dict[str, Category], path: Path) -> dict[str, Category]:
    # tomllib gives no line numbers; the header line of each entry is found in the text.
    text = path.read_text(encoding="utf-8-sig")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path.name}: not valid TOML ({exc})") from None
    entries = doc.get("categories")
    if not isinstance(entries, Mapping) or not entries:
        raise InputError(f"{path.name}: expected [categories.<code>] tables")
    cats = dict(base)
    for code, entry in entries.items():
        where = f"{path.name} line {_header_line(text, code) or '?'}"
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: categories.{code} must be a table")
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InputError(f"{where}: aliases of {code!r} must be a list of strings")
        fields = {k: entry[k] for k in ("zh", "en", "priority", "severity") if k in entry}
        if code in cats:
            old = cats[code]
            cat = replace(old, **fields, aliases=_unique(old.aliases + tuple(aliases)))
        elif "zh" in fields and "en" in fields:
            cat = Category(code=code, **fields, aliases=_unique(aliases))
        else:
            raise InputError(f"{where}: new category {code!r} needs 'zh' and 'en' labels")
        _check_category(cat, where)
        cats[code] = cat
        _claim_aliases(cats, code, aliases)
    return cats


def _merge_csv(base: dict[str, Category], path: Path) -> dict[str, Category]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="strict")  # Excel in zh-CN saves CSV as GBK
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in reader.fieldnames or []]
    reader.fieldnames = header
    if "source" not in header or "code" not in header:
        raise InputError(f"{path.name} line 1: the header must name the columns 'source,code' "
                         f"(optionally zh,en,priority,severity), got {','.join(header)!r}")
    cats = dict(base)
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        source, code = (row.get("source") or "").strip(), (row.get("code") or "").strip()
        if not source or not code:
            raise InputError(f"{where}: both 'source' and 'code' are needed")
        if code not in cats:
            zh, en = (row.get("zh") or "").strip(), (row.get("en") or "").strip()
            if not zh or not en:
                raise InputError(f"{where}: {code!r} is not a known category code; give its "
                                 f"zh and en labels on this line (columns zh,en) to add it")
            cat = Category(code, zh, en, (row.get("priority") or "normal").strip(),
                           _number(row.get("severity"), where))
            _check_category(cat, where)
            cats[code] = cat
        cats[code] = replace(cats[code], aliases=_unique(cats[code].aliases + (source,)))
        _claim_aliases(cats, code, [source])
    return cats


def _claim_aliases(cats: dict[str, Category], code: str, aliases: Iterable[str]) -> None:
    """Remove ``aliases`` from every category other than ``code`` (the file wins)."""
    keys = {normalise(a) for a in aliases}
    for other, cat in cats.items():
        if other != code and any(normalise(a) in keys for a in cat.aliases):
            cats[other] = replace(cat, aliases=tuple(a for a in cat.aliases
                                                     if normalise(a) not in keys))


def _unique(aliases: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(aliases))


def _number(value: str | None, where: str) -> float:
    if value is None or not value.strip():
        return 1.0
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{where}: severity must be a number, got {value!r}") from None
