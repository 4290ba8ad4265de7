import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from skcalc.metrics import (
    clinical_report,
    make_clinical_scorers,
    negative_predictive_value,
    positive_predictive_value,
    sensitivity_score,
    spared_biopsy_fraction,
    specificity_score,
)
from skcalc.metrics._clinical import _weighted_auc, confusion_counts


def _from_counts(tn, fp, fn, tp):
    y_true = np.r_[np.zeros(tn + fp, int), np.ones(fn + tp, int)]
    y_pred = np.r_[np.zeros(tn, int), np.ones(fp, int), np.zeros(fn, int), np.ones(tp, int)]
    return y_true, y_pred


def test_paper_table3_clustering_confusion_matrix():
    # Table 3, clustering approach: TN=15, FP=28, FN=0, TP=17 (60 test images).
    y_true, y_pred = _from_counts(15, 28, 0, 17)
    assert confusion_counts(y_true, y_pred) == {"tn": 15, "fp": 28, "fn": 0, "tp": 17}
    assert sensitivity_score(y_true, y_pred) == 1.0
    assert specificity_score(y_true, y_pred) == pytest.approx(15 / 43)  # 0.349 (paper 0.35)
    assert positive_predictive_value(y_true, y_pred) == pytest.approx(17 / 45)  # 0.378 (0.38)
    assert negative_predictive_value(y_true, y_pred) == 1.0
    assert (y_true == y_pred).mean() == pytest.approx(32 / 60)  # 0.533 (0.53)
    # The paper's F1 (0.51 here, 0.08 for mean/std) is not the actionable-class F1 (0.548,
    # 0.453): it matches the benign-class F1 (0.517, 0.089), truncated to two decimals.
    assert f1_score(y_true, y_pred) == pytest.approx(34 / 62)
    assert f1_score(y_true, y_pred, pos_label=0) == pytest.approx(30 / 58)
    assert math.floor(100 * f1_score(y_true, y_pred, pos_label=0)) / 100 == 0.51
    yt2, yp2 = _from_counts(2, 41, 0, 17)  # mean/std approach
    assert math.floor(100 * f1_score(yt2, yp2, pos_label=0)) / 100 == 0.08
    assert specificity_score(yt2, yp2) == pytest.approx(2 / 43)
    assert positive_predictive_value(yt2, yp2) == pytest.approx(17 / 58)  # 0.29


def test_metrics_agree_with_sklearn_and_pos_label():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 50)
    y_pred = rng.integers(0, 2, 50)
    assert sensitivity_score(y_true, y_pred) == recall_score(y_true, y_pred)
    assert specificity_score(y_true, y_pred) == recall_score(y_true, y_pred, pos_label=0)
    assert positive_predictive_value(y_true, y_pred) == precision_score(y_true, y_pred)
    assert negative_predictive_value(y_true, y_pred) == precision_score(y_true, y_pred,
                                                                        pos_label=0)
    s_true = np.where(y_true == 1, "act", "ben")
    s_pred = np.where(y_pred == 1, "act", "ben")
    assert sensitivity_score(s_true, s_pred, pos_label="act") == recall_score(y_true, y_pred)
    with pytest.raises(ValueError, match="not a label"):
        sensitivity_score(s_true, s_pred)
    with pytest.raises(ValueError, match="binary"):
        sensitivity_score([0, 1, 2], [0, 1, 2])


def test_zero_division():
    with pytest.warns(Warning, match="ill-defined"):
        assert sensitivity_score([0, 0], [0, 1]) == 0.0
    assert sensitivity_score([0, 0], [0, 1], zero_division=1.0) == 1.0
    assert np.isnan(negative_predictive_value([0, 1], [1, 1], zero_division=np.nan))


def test_spared_biopsy_fraction_hand_made():
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    s = np.array([0.05, 0.1, 0.3, 0.6, 0.95, 0.2, 0.5, 0.7, 0.9])
    # Sensitivity 1 -> threshold = lowest positive score 0.2; benign below: 0.05, 0.1.
    assert spared_biopsy_fraction(y, s) == pytest.approx(2 / 5)
    assert spared_biopsy_fraction(y, s, normalize="all", return_threshold=True) == (
        pytest.approx(2 / 9), 0.2)
    # Sensitivity 0.75 (3 of 4) -> threshold 0.5; benign below: 0.05, 0.1, 0.3.
    assert spared_biopsy_fraction(y, s, sensitivity=0.75, return_threshold=True) == (
        pytest.approx(3 / 5), 0.5)
    # 0.95 of 4 positives still needs all 4.
    assert spared_biopsy_fraction(y, s, sensitivity=0.95) == pytest.approx(2 / 5)
    # Brute force: highest threshold among candidate values keeping sensitivity >= target.
    for target in (1.0, 0.75, 0.5):
        ok = [t for t in np.unique(s) if (s[y == 1] >= t).mean() >= target]
        t = max(ok)
        assert spared_biopsy_fraction(y, s, sensitivity=target) == pytest.approx(
            (s[y == 0] < t).mean())
    assert np.isnan(spared_biopsy_fraction([0, 0], [0.1, 0.2]))


def test_paper_headline_spared_fraction():
    # 60 images, 17 actionable all scoring >= 0.4, 15 of 43 benign below: 25 % of all.
    y = np.r_[np.zeros(43, int), np.ones(17, int)]
    s = np.r_[np.linspace(0.0, 0.39, 15), np.linspace(0.41, 0.9, 28), np.linspace(0.4, 1, 17)]
    assert spared_biopsy_fraction(y, s, normalize="all") == pytest.approx(0.25)
    rep = clinical_report(y, s, threshold=0.4, n_bootstrap=0)
    assert rep["benign_spared_at_threshold"] == pytest.approx(0.25)
    assert rep["confusion_matrix"]["matrix"] == [[15, 28], [0, 17]]
    assert rep["spared_biopsies"][0]["n_spared"] == 15
    assert rep["spared_biopsies"][0]["threshold"] == pytest.approx(0.4)


def test_weighted_auc_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40).astype(bool)
    s = np.round(rng.random(40), 1)  # ties
    W = rng.integers(0, 3, size=(5, 40)).astype(float)
    auc = _weighted_auc(W, y, s)
    for b in range(5):
        assert auc[b] == pytest.approx(roc_auc_score(y, s, sample_weight=W[b]))
    assert np.isnan(_weighted_auc(np.ones((1, 3)), np.array([1, 1, 1], bool), s[:3]))[0]


def test_report_point_values_intervals_and_json():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    s = np.clip(0.3 * y + rng.random(80) * 0.7, 0, 1)
    rep = clinical_report(y, s, threshold=0.4, n_bootstrap=300, random_state=0)
    pred = (s >= 0.4).astype(int)
    m = rep["metrics"]
    assert m["sensitivity"]["value"] == pytest.approx(recall_score(y, pred))
    assert m["f1"]["value"] == pytest.approx(f1_score(y, pred))
    assert m["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, s))
    for k, v in m.items():
        assert v["ci_low"] <= v["value"] <= v["ci_high"], k
    json.loads(json.dumps(rep))
    rep2 = clinical_report(y, s, threshold=0.4, n_bootstrap=300, random_state=0)
    assert rep2 == rep
    assert clinical_report(y, s, n_bootstrap=300, random_state=1) != rep
    df = rep.to_frame()
    assert df.loc["sensitivity", "value"] == m["sensitivity"]["value"]
    assert rep["bootstrap_unit"] == "sample" and rep["n_units"] == 80


def test_group_bootstrap_resamples_whole_groups():
    # Four exams of 10 ROIs each; within an exam all scores are identical, and exam-level
    # correctness varies. Resampling whole exams: accuracy can only take the values
    # (number of correct exams drawn) / 4 -> multiples of 0.25.
    y = np.repeat([1, 1, 0, 0], 10)
    s = np.repeat([0.9, 0.1, 0.2, 0.8], 10)  # exams 0 and 2 right, 1 and 3 wrong
    groups = np.repeat(["e0", "e1", "e2", "e3"], 10)
    rep = clinical_report(y, s, 0.4, groups=groups, n_bootstrap=400, random_state=0)
    assert rep["bootstrap_unit"] == "group" and rep["n_units"] == 4
    lo, hi = rep["metrics"]["accuracy"]["ci_low"], rep["metrics"]["accuracy"]["ci_high"]
    assert lo == 0.0 and hi == 1.0
    # ROI-level resampling of 40 ROIs gives a far narrower interval around 0.5.
    rep_roi = clinical_report(y, s, 0.4, n_bootstrap=400, random_state=0)
    a = rep_roi["metrics"]["accuracy"]
    assert 0.3 < a["ci_low"] < 0.5 < a["ci_high"] < 0.7
    # Single-class resamples are skipped for AUC, not counted as failures.
    assert rep["metrics"]["roc_auc"]["ci_low"] is not None


def test_scorers():
    from sklearn.dummy import DummyClassifier

    X = np.zeros((6, 1))
    y = np.array([0, 0, 0, 1, 1, 1])
    clf = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    sc = make_clinical_scorers()
    assert sc["sensitivity"](clf, X, y) == 1.0
    assert sc["specificity"](clf, X, y) == 0.0
    assert sc["sensitivity_first"](clf, X, y) == 1.0
    assert [sc[k](clf, X, y) for k in ("tn", "fp", "fn", "tp")] == [0, 3, 0, 3]
    assert set(sc) >= {"ppv", "npv", "f1", "accuracy", "roc_auc", "balanced_accuracy"}


def test_sensitivity_then_specificity_is_lexicographic():
    from skcalc.metrics import sensitivity_then_specificity

    # sensitivities closer than 1e-3 (many positives): the composite score
    # sens + 1e-3 * spec picks index 0 (1.0005 > 1.0003), the lexicographic rule does not
    res = {
        "mean_test_sensitivity": np.array([0.9995, 1.0, 1.0, 1.0, np.nan]),
        "mean_test_specificity": np.array([1.0, 0.1, 0.3, 0.3, 1.0]),
    }
    assert sensitivity_then_specificity(res) == 2  # best spec among best sens, first wins
    composite = res["mean_test_sensitivity"] + 1e-3 * res["mean_test_specificity"]
    assert int(np.nanargmax(composite)) == 0  # what the composite score would have chosen
    with pytest.raises(ValueError, match="mean_test_specificity"):
        sensitivity_then_specificity({"mean_test_sensitivity": np.ones(2)})


def test_sensitivity_and_specificity_agree_with_imblearn():
    from imblearn.metrics import sensitivity_score as imb_sens
    from imblearn.metrics import specificity_score as imb_spec

    rng = np.random.default_rng(0)
    for _ in range(20):
        yt, yp = rng.integers(0, 2, 30), rng.integers(0, 2, 30)
        assert sensitivity_score(yt, yp) == pytest.approx(imb_sens(yt, yp))
        assert specificity_score(yt, yp) == pytest.approx(imb_spec(yt, yp))


# ClinicalScorer's ROC AUC: auc(roc_curve) for 0/1 labels, roc_auc_score otherwise; the
# value must be roc_auc_score's, bit for bit.
def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(2, 120),
    seed=st.integers(0, 2**32 - 1),
    n_levels=st.sampled_from([2, 3, 10, 0]),  # few distinct scores (many ties), or none
    score_dtype=st.sampled_from(["float64", "float32", "int64", "bool"]),
    label_dtype=st.sampled_from(["int64", "int8", "uint8", "bool"]),
)
def test_roc_auc_shortcut_equals_roc_auc_score(n, seed, n_levels, score_dtype, label_dtype):
    from skcalc.metrics._clinical import _roc_auc

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(label_dtype)
    if n_levels:
        s = rng.integers(0, n_levels, n) / max(n_levels - 1, 1)
    else:
        s = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8)
    s = (s > 0.5) if score_dtype == "bool" else (
        np.round(s * 100) if score_dtype == "int64" else s).astype(score_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only: roc_auc_score warns, gives nan
        expected = float(roc_auc_score(y, s))
        got = _roc_auc(y, s)
    assert _same(got, expected), (got, expected)


def test_roc_auc_falls_back_to_roc_auc_score_beyond_0_1_labels():
    from sklearn.exceptions import UndefinedMetricWarning

    from skcalc.metrics._clinical import _roc_auc

    s = np.array([0.1, 0.4, 0.35, 0.8, 0.8])
    for y in (np.array([-1, -1, 1, 1, -1]), np.array([1, 2, 2, 1, 2]),
              np.array([0.0, 0.0, 1.0, 1.0, 0.0])):
        assert _roc_auc(y, s) == roc_auc_score(y, s)
    with pytest.warns(UndefinedMetricWarning):  # one class: roc_auc_score's nan
        assert math.isnan(_roc_auc(np.zeros(5, int), s))
    with pytest.raises(ValueError, match="NaN"):
        _roc_auc(np.array([0, 1, 0, 1, 1]), np.array([0.1, np.nan, 0.2, 0.3, 0.4]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _roc_auc(np.array([0, 1, 0, 1, 1]), s) == roc_auc_score([0, 1, 0, 1, 1], s)
