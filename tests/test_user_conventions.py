"""What scikit-learn users expect (issue 14, point 9 and the documented settings)."""

import pathlib
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.inspection import permutation_importance
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate

import skcalc
import skcalc.segmentation._segmenter as seg_mod
from skcalc.datasets import make_calcification_cohort
from skcalc.features import TopologyFeatures
from skcalc.masks import MaskBuilder
from skcalc.pipeline import make_calcification_pipeline
from skcalc.segmentation import HDoGRegSegmenter
from skcalc.utils import InProcessMemory

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
pytestmark = pytest.mark.filterwarnings("ignore:.*calcification")


@pytest.fixture(scope="module")
def cohort():
    return make_calcification_cohort(n_rois=30, random_state=0)


def test_dir_skcalc_lists_only_its_public_names():
    names = dir(skcalc)
    assert "importlib" not in names and "_importlib" not in names
    assert all(not n.startswith("_") or n == "__version__" for n in names)
    for name in names:  # every listed name resolves (lazy ones import on access)
        assert getattr(skcalc, name) is not None, name
    assert set(skcalc.__all__) <= set(names)


def test_cross_validate_with_groups_needs_no_routing(cohort):
    """The documented single-level setting: groups= straight to a group splitter."""
    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=3, select_topology=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cross_validate(pipe, rois, y, groups=groups, cv=GroupKFold(3),
                             scoring="roc_auc", return_indices=True)  # fmt: skip
    assert len(res["test_score"]) == 3 and np.isfinite(res["test_score"]).all()
    for train, test in zip(res["indices"]["train"], res["indices"]["test"]):
        assert not set(groups[train]) & set(groups[test])  # GroupKFold got the exams
    search = GridSearchCV(pipe, {"classify__threshold": [0.3, 0.5]}, cv=GroupKFold(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(rois, y, groups=groups)
    assert len(search.cv_results_["params"]) == 2
    # With routing on, scikit-learn wants params={"groups": ...} (as the user guide says).
    with config_context(enable_metadata_routing=True), pytest.raises(ValueError, match="params"):
        cross_validate(pipe, rois, y, groups=groups, cv=GroupKFold(3))


def _count_segmentations(monkeypatch):
    calls = Counter()
    original = seg_mod._segment_roi

    def counted(roi, **params):
        calls[roi.roi_id] += 1
        return original(roi, **params)

    monkeypatch.setattr(HDoGRegSegmenter, "_one", staticmethod(counted))
    return calls


def test_stand_alone_stages_do_not_cache_unless_asked(cohort, monkeypatch):
    # Content no other test has segmented: the in-process cache is shared by the process.
    rois = [r.replace(image=r.image + 1) for r in cohort[0][:3]]
    assert HDoGRegSegmenter().memory is None and MaskBuilder().memory is None
    assert isinstance(make_calcification_pipeline()["segment"].memory, InProcessMemory)
    calls = _count_segmentations(monkeypatch)
    seg = HDoGRegSegmenter()
    seg.fit_transform(rois)
    seg.transform(rois)
    assert set(calls.values()) == {2}  # recomputed, as any scikit-learn transformer
    calls.clear()
    cached = HDoGRegSegmenter(memory="auto")
    a = cached.fit_transform(rois)
    b = cached.transform(rois)
    assert set(calls.values()) == {1}  # memory="auto": once per ROI
    np.testing.assert_array_equal(a[0].calcifications, b[0].calcifications)


def test_documented_column_counts_are_what_users_get(cohort):
    rois, y, _ = cohort
    masked = MaskBuilder().fit_transform(HDoGRegSegmenter().fit_transform(rois[:4]))
    topo = TopologyFeatures().fit(masked).get_feature_names_out()
    assert len(topo) == 523 == 8 * 65 + 3
    pipe = make_calcification_pipeline(n_clusters=15).fit(rois, y)
    assert len(pipe[:3].get_feature_names_out()) == 170 == 3 * 15 + 122 + 3
    guide = (DOCS / "user_guide.rst").read_text()
    assert "**523 columns**" in guide and "**170 named columns**" in guide


def test_permutation_importance_on_the_named_features(cohort):
    """As the user guide shows: the tail of the pipeline on the named feature table."""
    rois, y, _ = cohort
    pipe = make_calcification_pipeline(n_clusters=3, select_topology=10)
    pipe.set_output(transform="pandas").fit(rois, y)
    X = pipe[:3].transform(rois)
    assert isinstance(X, pd.DataFrame)
    assert list(X.columns) == list(pipe[:3].get_feature_names_out())
    result = permutation_importance(pipe[3:], X, y, n_repeats=3, random_state=0,
                                    scoring="roc_auc")  # fmt: skip
    imp = pd.Series(result.importances_mean, index=X.columns)
    assert imp.shape == (3 * 3 + 10 + 3,) and np.isfinite(imp).all()
    assert imp.max() > 0  # some named feature matters to the fitted model


def test_verbose_in_the_python_api_as_scikit_learn(cohort, capsys):
    """``verbose=`` of the searches is scikit-learn's: 0 silent, 1 says what it fits."""
    from skcalc.model_selection import grid_search

    rois, y, groups = cohort
    pipe = make_calcification_pipeline(n_clusters=3, select_topology=10)
    grid = {"classify__threshold": [0.3, 0.5]}
    grid_search(pipe, rois, y, groups, grid, cv=2, verbose=0)
    assert "Fitting" not in capsys.readouterr().out
    grid_search(pipe, rois, y, groups, grid, cv=2, verbose=1)
    assert "Fitting 2 folds for each of 2 candidates, totalling 4 fits" in capsys.readouterr().out
