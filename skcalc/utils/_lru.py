"""A thread-safe, bounded least-recently-used mapping: the in-process store of skcalc's
caches (the per-ROI results of the image stages, the fits of the tabular tail)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["LRUCache"]


class LRUCache:
    """A thread-safe, bounded least-recently-used mapping with hit/miss counters.

    Bounded in number of entries (``max_items``) and, optionally, in the sum of the
    weights given to ``put`` (``max_weight``, e.g. bytes): the least recently used
    entries are dropped until both hold (the weight bound never drops the newest entry).

    Examples
    --------
    >>> cache = LRUCache(max_items=10, max_weight=100)
    >>> cache.put("a", 1, weight=60); cache.put("b", 2, weight=60)
    >>> cache.get("a"), cache.get("b"), cache.weight
    ((False, None), (True, 2), 60)
    """

    def __init__(self, max_items: int = 512, max_weight: float | None = None) -> None:
        self.max_items = max_items
        self.max_weight = max_weight
        #: Sum of the weights of the entries.
        self.weight: float = 0
        self._weights: dict = {}
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

    def put(self, key: Hashable, value: Any, weight: float = 0) -> None:
        with self._lock:
            self.weight += weight - self._weights.pop(key, 0)
            if weight:
                self._weights[key] = weight
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_items or (
                self.max_weight is not None and self.weight > self.max_weight
                and len(self._data) > 1
            ):
                old, _ = self._data.popitem(last=False)
                self.weight -= self._weights.pop(old, 0)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weights.clear()
            self.weight = 0
            self.hits = self.misses = 0
            self.computed.clear()
        for cache in self.dependents:
            cache.clear()

    def __len__(self) -> int:
        return len(self._data)
