"""``memory="auto"`` means an in-process cache everywhere, never a folder called ``auto``
(issue 11.5)."""

import numpy as np

from skcalc import ROI
from skcalc.masks import MaskBuilder
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.utils import InProcessMemory
from skcalc.utils._caching import MEMORY_FRONT, cached_call, resolve_memory

CALLS = []


def _count(roi):
    CALLS.append(roi.roi_id)
    return float(roi.image.sum())


def spot_roi():
    yy, xx = np.mgrid[:32, :32]
    img = 0.3 + 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / (2 * 1.5**2))
    return ROI(img, meta={"roi_id": "a"})


def test_resolve_memory():
    assert isinstance(resolve_memory("auto"), InProcessMemory)
    mem = InProcessMemory()
    assert resolve_memory(mem) is mem
    assert resolve_memory(None).location is None


def test_cached_call_auto_is_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    MEMORY_FRONT.clear()
    CALLS.clear()
    roi = ROI(np.ones((4, 4), np.uint16), meta={"roi_id": "r"})
    for _ in range(3):
        assert cached_call(_count, roi, {}, memory="auto", stage="t") == 16.0
    assert CALLS == ["r"]  # cached
    assert list(tmp_path.iterdir()) == []  # and nothing on disk
    MEMORY_FRONT.clear()


def test_single_estimators_with_auto_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rois = HDoGRegSegmenter(regressor=None, memory="auto").fit_transform([spot_roi()])
    MaskBuilder(memory="auto").fit_transform(rois)
    assert not (tmp_path / "auto").exists()
    assert list(tmp_path.iterdir()) == []
