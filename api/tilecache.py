"""A byte-bounded, thread-safe LRU cache of encoded tiles.

Hand-written (about 40 lines) rather than taken from ``cachetools``: we need the bound in bytes of
the stored tiles, not in entries, and one lock around get/put for uvicorn's thread pool; adding a
dependency for that buys nothing. Keys carry the layer version, so an edit never needs an
invalidation: the next request asks for a new key and the old entries age out.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


# bookkeeping per entry (key tuple, dict slot): empty tiles must count too, or they would be unbounded
ENTRY_OVERHEAD = 256


class TileCache:
    """Least-recently-used cache of ``bytes`` values holding at most ``max_bytes`` of them.

    A tile larger than a quarter of the budget is not cached (one huge tile must not evict the rest).
    ``max_bytes = 0`` disables the cache.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The cached tile of ``key`` (and mark it recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        """Store ``value`` under ``key``, evicting the least recently used tiles over the budget."""
        size = len(value) + ENTRY_OVERHEAD
        if self.max_bytes == 0 or size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old) + ENTRY_OVERHEAD
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted) + ENTRY_OVERHEAD

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
