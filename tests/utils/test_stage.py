"""The image-stage contract: one validation path, one summary warning at the user's line."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from skcalc import ROI, MaskBuilder, SkcalcWarning
from skcalc.utils._stage import ImageStage


def _empty_rois(n=3):
    return [
        ROI(np.zeros((16, 16)), calcifications=np.zeros((16, 16), np.int32),
            meta={"roi_id": f"e{i}"})
        for i in range(n)
    ]


def test_one_summary_warning_per_call_attributed_to_the_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_pipeline(MaskBuilder()).fit_transform(_empty_rois())
    ours = [w for w in caught if issubclass(w.category, SkcalcWarning)]
    assert len(ours) == 1
    assert "3 ROI(s)" in str(ours[0].message)
    assert ours[0].filename == __file__  # not sklearn/utils/_set_output.py


def test_skcalc_warnings_can_be_silenced_by_category():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=SkcalcWarning)
        MaskBuilder().fit_transform(_empty_rois())
    assert not [w for w in caught if issubclass(w.category, SkcalcWarning)]


def test_transform_validates_parameters_even_without_fit():
    with pytest.raises(ValueError, match="band_width"):
        MaskBuilder(band_width=-1).transform(_empty_rois(1))


def test_image_stage_is_abstract():
    with pytest.raises(TypeError):
        ImageStage()
