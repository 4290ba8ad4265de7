"""A thread-safe, bounded least-recently-used mapping: the in-process store of skcalc's
caches (the per-ROI results of the image stages, the fits of the tabular tail)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["LRUCache"]


class LRUCache:
    """A thread-safe, bounded least-recently-used mapping with hit/miss counters."""

    def __init__(self, max_items: int = 512) -> None:
        self.max_items = max_items
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        #: Number of computations (cache misses) per ``(estimator class, stage)``.
        self.computed: Counter = Counter()
        #: Caches whose entries derive from this one's computations: cleared with it.
        self.dependents: list[LRUCache] = []

    def get(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return True, self._data[key]
            self.misses += 1
            return False, None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0
            self.computed.clear()
        for cache in self.dependents:
            cache.clear()

    def __len__(self) -> int:
        return len(self._data)
