"""Fuzzing the image stages: any input gives a clear skcalc error or finite output.

Hypothesis draws images (dtype, shape, value range, NaN/inf, strides), spacings, regions and
label images and pushes them through every image stage. The contract (design.md, "Errors and
bad input"): either a ``ValueError``/``TypeError`` (skcalc's errors subclass them) whose
message names the ROI, or output that is finite where it must be.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi

from skcalc import (
    ROI,
    HDoGRegSegmenter,
    LocalFeatureExtractor,
    MaskBuilder,
    SkcalcWarning,
    TopologyFeatures,
)

DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float32, np.float64, bool]


@st.composite
def images(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.tuples(st.integers(1, 40), st.integers(1, 40)))
    if dtype is bool:
        elements = st.booleans()
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -(2**40)), min(info.max, 2**40))
    else:
        elements = st.one_of(
            st.floats(-1e9, 1e9, width=32),
            st.sampled_from([np.nan, np.inf, -np.inf]),
        )
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()) and min(shape) > 1:
        a = a[::2, ::-1]  # strided, negative strides
    return a


spacings = st.one_of(
    st.floats(0.0, 2.0),
    st.just(float("nan")),
    st.tuples(st.floats(0.01, 1.5), st.floats(0.01, 1.5)),
    st.sampled_from([70, -0.1, float("inf")]),
)


def _named(exc: BaseException) -> bool:
    return "'fz'" in str(exc) or "fz" in str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image=images(), spacing=spacings, data=st.data())
def test_every_stage_gives_a_clear_error_or_finite_output(image, spacing, data):
    try:
        roi = ROI(image, spacing=spacing, meta={"roi_id": "fz"})
    except (ValueError, TypeError) as exc:
        assert _named(exc), exc
        return
    shape = roi.shape
    if data.draw(st.booleans()):
        region = data.draw(hnp.arrays(bool, shape))
        roi = roi.replace(region=region)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkcalcWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            [seg] = HDoGRegSegmenter(regressor=None).fit_transform([roi])
        except (ValueError, TypeError) as exc:
            assert _named(exc), exc
            return
        lab = seg.calcifications
        assert lab.shape == shape and lab.dtype.kind in "iu" and lab.min() >= 0
        try:
            [m] = MaskBuilder().fit_transform([seg])
        except (ValueError, TypeError) as exc:
            assert _named(exc), exc
            return
        topo = TopologyFeatures().fit_transform([m])
        assert np.isfinite(topo).all()
        if m.masks.n_objects <= 20:
            try:
                [tables] = LocalFeatureExtractor().fit_transform([m])
            except (ValueError, TypeError) as exc:
                assert _named(exc), exc
                return
            assert tables.n_objects == m.masks.n_objects


@settings(max_examples=40, deadline=None)
@given(
    labels=hnp.arrays(
        st.sampled_from([np.int8, np.int32, np.int16, np.int64]),
        st.tuples(st.integers(1, 30), st.integers(1, 30)),
        elements=st.integers(-3, 50),
    )
)
def test_label_images_through_masks_and_topology(labels):
    image = np.full(labels.shape, 1000, np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkcalcWarning)
        try:
            roi = ROI(image, calcifications=labels, spacing=0.1, meta={"roi_id": "fz"})
            [m] = MaskBuilder().fit_transform([roi])
        except (ValueError, TypeError) as exc:
            assert _named(exc) or "label" in str(exc) or "calcifications" in str(exc), exc
            assert (labels < 0).any(), exc  # only negative labels are refused
            return
        # Objects are the 4-connected components of labels > 0 (touching labels merge).
        assert m.masks.n_objects == ndi.label(labels > 0)[1]
        assert np.isfinite(TopologyFeatures().fit_transform([m])).all()


@pytest.mark.parametrize("spacing", [70, 5.0, 0.001])
def test_implausible_spacing_is_refused_before_allocating(spacing):
    with pytest.raises(ValueError, match="plausible"):
        ROI(np.zeros((10, 10), np.uint16), spacing=spacing, meta={"roi_id": "fz"})
