"""Entity tags: the one comparison every conditional GET uses."""
from __future__ import annotations


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (or ``*``): answer 304.

    RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so ``W/"x"`` and ``"x"`` match.
    """
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    return any(t.strip() == "*" or t.strip().removeprefix("W/") == opaque for t in if_none_match.split(","))
