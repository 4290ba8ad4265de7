import numpy as np
import pytest
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
