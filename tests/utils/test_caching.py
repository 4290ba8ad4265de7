import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joblib import Memory

from skcalc import ROI
from skcalc.utils import cached_call, map_rois, roi_content_hash
from skcalc.utils._caching import MEMORY_FRONT

CALLS = []


def _count_sum(roi, offset):
    CALLS.append(roi.roi_id)
    return float(roi.image.sum()) + offset


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    MEMORY_FRONT.clear()
    yield
    MEMORY_FRONT.clear()


def _rois(n=4):
    return [ROI(np.full((5, 5), i, np.uint16), meta={"roi_id": f"r{i}"}) for i in range(n)]


def test_hash_depends_on_content_spacing_and_fields_not_on_meta():
    a = ROI(np.zeros((3, 3)), meta={"roi_id": "a"})
    assert roi_content_hash(a) == roi_content_hash(a.replace(meta={"roi_id": "b"}))
    assert roi_content_hash(a) != roi_content_hash(a.replace(spacing=0.1))
    lab = np.zeros((3, 3), np.int32)
    b = a.replace(calcifications=lab)
    assert roi_content_hash(a, ("image",)) == roi_content_hash(b, ("image",))
    lab2 = lab.copy()
    lab2[1, 1] = 1
    c = a.replace(calcifications=lab2)
    key = ("image", "calcifications")
    assert roi_content_hash(b, key) != roi_content_hash(c, key)


def test_without_memory_every_call_computes():
    rois = _rois()
    map_rois(_count_sum, rois, {"offset": 1}, stage="t")
    map_rois(_count_sum, rois, {"offset": 1}, stage="t")
    assert len(CALLS) == 8


def test_memory_computes_each_roi_once_per_parameter_set(tmp_path):
    mem = Memory(tmp_path, verbose=0)
    rois = _rois()
    first = map_rois(_count_sum, rois, {"offset": 1}, memory=mem, stage="t")
    again = map_rois(_count_sum, list(reversed(rois)), {"offset": 1}, memory=mem, stage="t")
    assert first == [1.0 * 25 * i + 1 for i in range(4)]
    assert again == first[::-1]
    assert sorted(CALLS) == ["r0", "r1", "r2", "r3"]
    map_rois(_count_sum, rois, {"offset": 2}, memory=mem, stage="t")
    assert len(CALLS) == 8  # new parameters, new entries
    # the on-disk cache serves a fresh process (simulated by clearing the front)
    MEMORY_FRONT.clear()
    assert cached_call(_count_sum, rois[2], {"offset": 1}, memory=mem, stage="t") == 51.0
    assert len(CALLS) == 8


def test_parallel_results_in_input_order(tmp_path):
    rois = _rois(6)
    serial = map_rois(_count_sum, rois, {"offset": 0}, n_jobs=1, stage="t")
    parallel = map_rois(_count_sum, rois, {"offset": 0}, n_jobs=2, stage="t")
    assert serial == parallel


def test_cache_never_returns_a_result_for_changed_content():
    # Issue 10, bug 1: an ROI built from a writeable array, a cached MaskBuilder run, then the
    # caller's array changed. The record owns a copy, so the second run still sees 1 object,
    # and an ROI built from the changed array sees 2 (at 2fbce9a the cache answered 1).
    from skcalc import MaskBuilder
    from skcalc.utils import InProcessMemory

    image = np.zeros((24, 24), np.uint16)
    labels = np.zeros((24, 24), np.int32)
    labels[4:6, 4:6] = 1
    roi = ROI(image, calcifications=labels, meta={"roi_id": "r"})
    builder = MaskBuilder(memory=InProcessMemory())
    [first] = builder.fit_transform([roi])
    assert first.masks.n_objects == 1
    labels[15:17, 15:17] = 2
    [again] = builder.transform([roi])
    assert again.masks.n_objects == 1  # the record did not follow the caller's array
    [changed] = builder.transform([ROI(image, calcifications=labels, meta={"roi_id": "r"})])
    assert changed.masks.n_objects == 2
    [uncached] = MaskBuilder().fit_transform([ROI(image, calcifications=labels)])
    assert uncached.masks.n_objects == 2


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    field=st.sampled_from(["image", "calcifications", "region", "reference"]),
    dtype=st.sampled_from([np.uint16, np.int32, np.float32, np.float64]),
)
def test_any_change_of_content_changes_the_key(data, field, dtype):
    shape = data.draw(st.tuples(st.integers(1, 6), st.integers(1, 6)))
    base = {
        "image": np.zeros(shape, dtype),
        "calcifications": np.zeros(shape, np.int32),
        "region": np.ones(shape, bool),
        "reference": np.zeros(shape, bool),
    }
    roi = ROI(**base)
    fields = ("image", "calcifications", "region", "reference")
    key = roi.content_hash(fields)
    r = data.draw(st.integers(0, shape[0] - 1))
    c = data.draw(st.integers(0, shape[1] - 1))
    changed = base[field].copy()
    if changed.dtype == bool:
        changed[r, c] = not changed[r, c]
    else:
        changed[r, c] = data.draw(st.integers(1, 1000))
    if field == "region" and not changed.any():
        return
    assert ROI(**{**base, field: changed}).content_hash(fields) != key
    # The caller's arrays changing after the record was built change nothing.
    base[field][...] = changed
    assert roi.content_hash(fields) == key


def test_lazy_image_key_follows_content_even_with_same_size_and_mtime(tmp_path):
    # ``cp -p`` of new content keeps size and mtime; the key must still change.
    import os

    path = tmp_path / "img.npy"
    np.save(path, np.zeros((8, 8), np.uint16))
    roi = ROI(path=path, spacing=0.1)
    key = roi.content_hash()
    st_ = os.stat(path)
    np.save(path, np.ones((8, 8), np.uint16))
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    assert os.stat(path).st_size == st_.st_size
    assert ROI(path=path, spacing=0.1).content_hash() != key


def test_lru_cache_bounds_items_and_weight():
    from skcalc.utils._lru import LRUCache

    cache = LRUCache(max_items=3, max_weight=10)
    for k in "abcd":
        cache.put(k, k.upper())
    assert [cache.get(k)[0] for k in "abcd"] == [False, True, True, True]
    cache.put("b", "B", weight=6)  # replaces b; weight 6
    cache.put("e", "E", weight=6)  # 12 > 10: the least recently used (c, d, b) go first
    assert cache.weight == 6 and cache.get("e") == (True, "E") and not cache.get("b")[0]
    cache.put("big", 0, weight=50)  # over the budget alone: kept, the rest dropped
    assert len(cache) == 1 and cache.weight == 50
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0
