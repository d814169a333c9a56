"""Domain errors. Each also subclasses the builtin it refines, so callers can catch either."""
from __future__ import annotations


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose."""


class InputError(GeogridError, ValueError):
    """Bad input from a user: a file, a parameter or a geometry. Message names the fix."""


class InvalidResolution(InputError):
    """H3 resolution outside the range an operation supports."""


class UnknownCRS(InputError):
    """A coordinate system that is neither an EPSG code nor gcj02/bd09."""


class NotEnoughData(InputError):
    """Too few incidents or cells for a statistic to mean anything."""


class NotFound(GeogridError, LookupError):
    """A plan, grid, collection or feature that does not exist."""


class Conflict(GeogridError):
    """A write that conflicts with the current state (e.g. two active plans)."""


class StaleVersion(Conflict):
    """An edit based on an out-of-date version (ETag mismatch)."""


class LeakageError(GeogridError, ValueError):
    """A forecast or backtest was asked to use data after its cut-off."""
