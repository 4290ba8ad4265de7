"""ImportanceSelector: the paper's selection of topology features, fit on training data only."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from skcalc._fitcache import FIT_CACHE
from skcalc.feature_selection import ImportanceSelector
from skcalc.utils import InProcessMemory


def _data(n=120, d=30, seed=0):
    """Columns 0-4 carry the label, the rest is noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, :5].sum(axis=1) + 0.8 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_keeps_the_informative_columns_and_the_kept_ones():
    X, y = _data()
    sel = ImportanceSelector(max_features=5, keep=[-1], random_state=0).fit(X, y)
    kept = sel.get_support(indices=True)
    assert set(kept) == {0, 1, 2, 3, 4, 29}
    assert sel.transform(X).shape == (120, 6)
    np.testing.assert_array_equal(sel.transform(X), X[:, kept])
    # the ranking is by importance: the kept graph columns are the 5 most important
    ranked = np.argsort(-sel.importances_[:-1], kind="stable")[:5]
    assert set(ranked) == {0, 1, 2, 3, 4}


def test_max_features_none_or_large_keeps_all_and_names_follow():
    X, y = _data(d=8)
    frame = pd.DataFrame(X, columns=[f"topo_{i}" for i in range(8)])
    assert ImportanceSelector(max_features=None, random_state=0).fit(X, y).support_.all()
    sel = ImportanceSelector(max_features=100, random_state=0).fit(frame, y)
    assert sel.support_.all()
    sel = ImportanceSelector(max_features=2, keep=[0], random_state=0).set_output(
        transform="pandas").fit(frame, y)
    out = sel.transform(frame)
    assert list(out.columns) == sel.get_feature_names_out().tolist()
    assert out.columns[0] == "topo_0" and len(out.columns) == 3
    with pytest.raises(ValueError, match="out of range"):
        ImportanceSelector(keep=[8]).fit(X, y)


def test_coef_models_and_errors():
    X, y = _data()
    sel = ImportanceSelector(LogisticRegression(), max_features=5).fit(X, y)
    assert set(sel.get_support(indices=True)) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="neither feature_importances_ nor coef_"):
        from sklearn.neighbors import KNeighborsClassifier

        ImportanceSelector(KNeighborsClassifier()).fit(X, y)


def test_selection_is_fit_on_each_training_fold_only():
    # Per fold, the selection inside cross-validation equals a selection fitted on that
    # fold's training rows alone; it differs from the one fitted on all rows, so a leak
    # (selection fitted once on all data) would fail this test.
    X, y = _data(n=90, d=40, seed=1)
    pipe = Pipeline(
        [("select", ImportanceSelector(max_features=6, random_state=0)),
         ("clf", LogisticRegression())]
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    res = cross_validate(pipe, X, y, cv=cv, return_estimator=True, return_indices=True)
    on_all = ImportanceSelector(max_features=6, random_state=0).fit(X, y).support_
    differs = 0
    for est, train in zip(res["estimator"], res["indices"]["train"]):
        alone = ImportanceSelector(max_features=6, random_state=0).fit(X[train], y[train])
        np.testing.assert_array_equal(est.named_steps["select"].support_, alone.support_)
        differs += not np.array_equal(alone.support_, on_all)
    assert differs >= 1


def test_memoised_importances_are_identical_and_max_features_grid_searchable():
    X, y = _data()
    FIT_CACHE.clear()
    pipe = Pipeline(
        [("select", ImportanceSelector(random_state=0, memory=InProcessMemory())),
         ("clf", LogisticRegression())]
    )
    grid = {"select__max_features": [3, 5, 10]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    cached = GridSearchCV(pipe, grid, cv=cv).fit(X, y)
    # 3 folds + the refit on all rows: one importance fit each, reused by the 3 sizes
    assert FIT_CACHE.misses == 4 and FIT_CACHE.hits == 3 * 3 - 3
    plain = GridSearchCV(clone(pipe).set_params(select__memory=None), grid, cv=cv).fit(X, y)
    np.testing.assert_array_equal(
        cached.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
    assert cached.best_params_ == plain.best_params_
    FIT_CACHE.clear()
