"""DeepROIClassifier, DeepFeatureExtractor and make_deep_pipeline on tiny synthetic cohorts."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_validate
from sklearn.utils._param_validation import InvalidParameterError

from skcalc.datasets import make_calcification_cohort
from skcalc.deep import DeepFeatureExtractor, DeepROIClassifier, make_deep_pipeline
from skcalc.deep._estimators import _exam_groups
from skcalc.testing.estimator_checks import DATA_FREE_CHECKS, parametrize_with_image_checks

SMALL = {"input_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def cohort():
    # 0.14 mm spacing: half the pixels of the default cohort, same anatomy
    rois, y, groups = make_calcification_cohort(n_rois=16, spacing=0.14, random_state=0)
    return rois, y, groups


# --------------------------------------------------------------------------- feature extractor
def test_feature_extractor_shapes_and_names(cohort):
    rois, _, _ = cohort
    ext = DeepFeatureExtractor(**SMALL).fit(rois)
    features = ext.transform(rois[:5])
    assert features.shape == (5, 2048) and features.dtype == np.float64
    assert np.isfinite(features).all() and (features >= 0).all()  # pooled ReLU outputs
    names = ext.get_feature_names_out()
    assert names.shape == (2048,) and names[0] == "resnet50_0" and names[-1] == "resnet50_2047"
    # one ROI at a time gives the same rows up to float32 rounding (batch norm in eval
    # mode: no batch statistics), and any order of the same ROIs gives them exactly
    single = np.vstack([ext.transform([r]) for r in rois[:2]])
    np.testing.assert_allclose(single, features[:2], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(ext.transform(rois[:5][::-1]), features[::-1])


def test_vgg16_features_are_the_4096_penultimate_ones(cohort):
    rois, _, _ = cohort
    ext = DeepFeatureExtractor("vgg16", **SMALL).fit(rois[:3])
    features = ext.transform(rois[:3])
    assert features.shape == (3, 4096)
    assert ext.get_feature_names_out()[-1] == "vgg16_4095"
    x = torch.from_numpy(np.zeros((1, 3, 32, 32), np.float32))
    with torch.inference_mode():
        assert ext.network_.classifier[:5](
            torch.flatten(ext.network_.avgpool(ext.network_.features(x)), 1)
        ).shape == (1, 4096)


def test_feature_extractor_set_output_pandas(cohort):
    rois, _, _ = cohort
    ext = DeepFeatureExtractor(**SMALL).set_output(transform="pandas")
    frame = ext.fit_transform(rois[:3])
    assert list(frame.columns[:2]) == ["resnet50_0", "resnet50_1"] and frame.shape == (3, 2048)


def test_fine_tuned_features_differ_and_need_y(cohort):
    rois, y, _ = cohort
    with pytest.raises(ValueError, match="requires y"):
        DeepFeatureExtractor(fine_tune=True, **SMALL).fit(rois)
    plain = DeepFeatureExtractor(**SMALL).fit(rois, y).transform(rois)
    tuned_ext = DeepFeatureExtractor(fine_tune=True, epochs=1, **SMALL).fit(rois, y)
    tuned = tuned_ext.transform(rois)
    assert tuned.shape == plain.shape == (len(rois), 2048)
    assert not np.allclose(tuned, plain)
    assert tuned_ext.n_iter_ == 1 and list(tuned_ext.classes_) == [0, 1]


# --------------------------------------------------------------------------- classifier
PARAMS = dict(SMALL, epochs=3, n_iter_no_change=1)


@pytest.fixture(scope="module")
def fitted(cohort):
    rois, y, _ = cohort
    return DeepROIClassifier(**PARAMS).fit(rois, y)


def test_classifier_probabilities_and_determinism(cohort, fitted):
    rois, y, _ = cohort
    proba = fitted.predict_proba(rois)
    assert proba.shape == (len(rois), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert set(fitted.predict(rois)) <= {0, 1}
    np.testing.assert_array_equal(fitted.predict(rois), fitted.classes_[proba.argmax(axis=1)])
    # same random_state: identical outputs, and the global torch RNG is left alone
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = DeepROIClassifier(**PARAMS).fit(rois, y)
    assert torch.equal(torch.rand(3), expected)
    np.testing.assert_array_equal(again.predict_proba(rois), proba)
    assert again.history_ == fitted.history_
    # another random_state: another network
    other = DeepROIClassifier(**{**PARAMS, "random_state": 1, "epochs": 1}).fit(rois, y)
    assert not np.allclose(other.predict_proba(rois), proba)
    # pickling keeps the fitted network
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(rois), proba)


def test_classifier_features_are_those_of_the_fine_tuned_extractor(cohort, fitted):
    # The paper's comparison fine-tunes once per fold for "fine-tuned" and "fine-tuned
    # features + LightGBM": the classifier's features must be the extractor's, which
    # trains the same network from the same seed.
    rois, y, _ = cohort
    ext = DeepFeatureExtractor(fine_tune=True, **PARAMS).fit(rois, y)
    np.testing.assert_array_equal(fitted.extract_features(rois), ext.transform(rois))
    assert ext.history_ == fitted.history_
    with pytest.raises(NotFittedError):
        DeepROIClassifier(**PARAMS).extract_features(rois)


def test_classifier_passes_the_image_checks_classifier_analogues(cohort, fitted):
    # skcalc's image checks fit without y and call transform: these are their analogues
    import copy

    from skcalc.testing.estimator_checks import assert_outputs_equal

    rois, y, _ = cohort
    proba = fitted.predict_proba(rois)
    perm = list(range(len(rois)))[::-1]
    np.testing.assert_array_equal(fitted.predict_proba([rois[i] for i in perm]), proba[perm])
    np.testing.assert_array_equal(fitted.predict_proba(tuple(rois)), proba)
    as_float = [r.replace(image=r.image.astype(np.float32)) for r in rois]
    np.testing.assert_allclose(fitted.predict_proba(as_float), proba, rtol=1e-5, atol=1e-8)
    small = list(rois[:8])
    snapshot = [copy.deepcopy(r) for r in small]
    est = DeepROIClassifier(epochs=1, **SMALL)
    assert est.fit(small, y[:8]) is est
    est.predict_proba(small)
    assert_outputs_equal(snapshot, small, rtol=0, path="input after fit/predict")


def test_fitted_network_is_stored_as_arrays(cohort, fitted, tmp_path):
    # pickle and skops model files hold the network's arrays, never a torch module
    import skops.io as sio

    from skcalc.persistence import load_model, save_model

    rois, _, _ = cohort
    state = fitted.__getstate__()
    assert state["network_"]["arch"] == "resnet50" and state["network_"]["num_classes"] == 2
    assert all(isinstance(v, np.ndarray) for v in state["network_"]["state"].values())
    path = tmp_path / "deep.skops"
    save_model(fitted, path)
    # Recorded under its public name, which skcalc trusts: no trusted= needed.
    assert sio.get_untrusted_types(file=path) == ["skcalc.deep.DeepROIClassifier"]
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(rois), fitted.predict_proba(rois))


@pytest.mark.parametrize("make", [
    lambda w: DeepFeatureExtractor(weights=w, **SMALL),  # a Path
    lambda w: DeepROIClassifier(weights=str(w), epochs=1, validation_fraction=None, **SMALL),
], ids=["extractor", "classifier"])
def test_fitted_from_a_weights_file_saves_and_loads_without_it(cohort, tmp_path, make):
    # The fitted network is in the model file: the weights file it started from is not
    # needed, and load_model never reads a path the file names.
    import warnings

    from skcalc.exceptions import SkcalcWarning
    from skcalc.persistence import ModelFileError, load_model, save_model

    rois, y, _ = cohort
    rois, y = rois[:6], y[:6]
    weights = tmp_path / "w.pth"
    torch.save(DeepFeatureExtractor(**SMALL).fit(rois).network_.state_dict(), weights)
    est = make(weights).fit(rois, y)
    expected = (est.predict_proba(rois) if hasattr(est, "predict_proba")
                else est.transform(rois))
    path = save_model(est, tmp_path / "m.skops")
    weights.unlink()
    with pytest.warns(SkcalcWarning, match=r"w\.pth.*refit starts from a random init"):
        loaded = load_model(path)
    assert loaded.weights is None
    got = (loaded.predict_proba(rois) if hasattr(loaded, "predict_proba")
           else loaded.transform(rois))
    np.testing.assert_array_equal(got, expected)
    # an unfitted estimator needs its file: refused, even as a bare file name
    for name in (weights, "w.pth"):
        unfitted = make(name)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            save_model(unfitted, tmp_path / "u.skops")
        with pytest.raises(ModelFileError, match="weights names a weights file"):
            load_model(tmp_path / "u.skops")


def test_class_weights_are_balanced_on_the_training_exams(cohort, fitted):
    rois, y, groups = cohort
    val = fitted.validation_indices_
    train = np.setdiff1d(np.arange(len(rois)), val)
    assert 0 < len(val) < len(rois)
    assert not set(groups[val]) & set(groups[train])  # split by exam
    counts = np.bincount(y[train], minlength=2)
    np.testing.assert_allclose(fitted.class_weight_, len(train) / (2 * counts))
    assert fitted.class_weight_[1] > 1 > fitted.class_weight_[0]  # actionable: the minority

    # no validation: weights of all of y, the last epoch is kept
    whole = DeepROIClassifier(**{**PARAMS, "epochs": 2, "validation_fraction": None,
                                 "class_weight": "balanced"}).fit(rois, y)
    np.testing.assert_allclose(whole.class_weight_, len(y) / (2 * np.bincount(y)))
    assert len(whole.validation_indices_) == 0 and np.isnan(whole.history_[0]["val_f1"])
    assert whole.n_iter_ == 2 and whole.best_epoch_ == 1

    custom = DeepROIClassifier(epochs=1, class_weight={1: 4.0}, **SMALL).fit(rois[:8], y[:8])
    np.testing.assert_array_equal(custom.class_weight_, [1.0, 4.0])
    with pytest.raises(ValueError, match="not in y"):
        DeepROIClassifier(epochs=1, class_weight={7: 2.0}, **SMALL).fit(rois, y)


def test_resolve_class_weight():
    from skcalc.deep._train import resolve_class_weight

    y, classes = np.array([0, 0, 0, 1]), np.array(["benign", "actionable"])
    np.testing.assert_allclose(resolve_class_weight("balanced", y, classes), [2 / 3, 2.0])
    np.testing.assert_array_equal(resolve_class_weight(None, y, classes), [1.0, 1.0])
    np.testing.assert_array_equal(resolve_class_weight({"actionable": 3}, y, classes), [1, 3])


def test_fine_tuning_changes_the_network_and_stops_early(cohort, fitted):
    from skcalc.deep import build_network

    rois, y, _ = cohort
    # the weights moved away from the (seeded) initialisation
    seed = int(np.random.RandomState(0).randint(2**31 - 1))
    init = build_network("resnet50", None, num_classes=2, seed=seed).state_dict()
    tuned = fitted.network_.state_dict()
    assert not torch.equal(init["conv1.weight"], tuned["conv1.weight"])
    assert not torch.equal(init["fc.weight"], tuned["fc.weight"])
    # early stopping after one epoch without a better validation (F1, -loss)
    history = fitted.history_
    assert 1 <= fitted.n_iter_ <= 3 and len(history) == fitted.n_iter_
    assert fitted.n_iter_ == fitted.best_epoch_ + 2 or fitted.n_iter_ == 3
    keys = [(h["val_f1"], -h["val_loss"]) for h in history]
    assert keys.index(max(keys)) == fitted.best_epoch_
    # the kept network is the best epoch's: its validation loss is reproduced
    from skcalc.deep._train import forward_batches

    val = fitted.validation_indices_
    _, x = fitted._preprocess([rois[i] for i in val])
    logits = forward_batches(fitted.network_, x, 16)
    loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(fitted.class_weight_,
                                                         dtype=torch.float32))
    value = float(loss(logits, torch.as_tensor(y[val])))
    assert value == pytest.approx(history[fitted.best_epoch_]["val_loss"], rel=1e-4)


def test_classifier_input_validation(cohort):
    rois, y, _ = cohort
    with pytest.raises(ValueError, match="requires y"):
        DeepROIClassifier(**SMALL).fit(rois, None)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DeepROIClassifier(**SMALL).fit(rois[:3], [1, 1, 1])
    with pytest.raises(ValueError, match="3 ROIs but y has 2"):
        DeepROIClassifier(**SMALL).fit(rois[:3], [0, 1])
    with pytest.raises(TypeError, match="list of skcalc.ROI"):
        DeepROIClassifier(**SMALL).fit(np.zeros((3, 4)), [0, 1, 0])
    with pytest.raises(InvalidParameterError, match="arch"):
        DeepROIClassifier(arch="resnet18").fit(rois, y)
    with pytest.raises(InvalidParameterError, match="input_size"):
        DeepFeatureExtractor(input_size=4).fit(rois)


def test_missing_imagenet_weights_error_names_the_file(cohort, tmp_path, monkeypatch):
    rois, y, _ = cohort
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        DeepFeatureExtractor("vgg16", weights="imagenet", **SMALL).fit(rois)


def test_weights_path_is_used(cohort, tmp_path):
    rois, y, _ = cohort
    ext = DeepFeatureExtractor(**SMALL).fit(rois)
    torch.save(ext.network_.state_dict(), tmp_path / "w.pth")
    loaded = DeepFeatureExtractor(weights=tmp_path / "w.pth", **{**SMALL, "random_state": 9})
    np.testing.assert_array_equal(loaded.fit(rois).transform(rois), ext.transform(rois))


def test_clone_get_set_params():
    clf = DeepROIClassifier("vgg16", weights=None, input_size=48, epochs=3)
    params = clf.get_params()
    assert params["arch"] == "vgg16" and params["input_size"] == 48 and params["epochs"] == 3
    copy = clone(clf)
    assert copy is not clf and copy.get_params() == params
    copy.set_params(arch="resnet50", lr=1e-3)
    assert copy.arch == "resnet50" and copy.lr == 1e-3 and clf.arch == "vgg16"
    assert clone(DeepFeatureExtractor(fine_tune=True)).get_params()["fine_tune"] is True


def test_groups_come_from_exam_ids_else_patient_ids(cohort):
    from skcalc.exceptions import SkcalcWarning

    rois, _, groups = cohort
    np.testing.assert_array_equal(_exam_groups(rois), groups.astype(str))
    # a manifest without exam ids: its patients are the groups (as load_manifest's)
    patients = [r.replace(meta={"patient_id": f"p{i // 2}"}) for i, r in enumerate(rois[:4])]
    np.testing.assert_array_equal(_exam_groups(patients), ["p0", "p0", "p1", "p1"])
    bare = [r.replace(meta={}) for r in rois[:3]]
    with pytest.warns(SkcalcWarning, match="no meta 'exam_id' or 'patient_id'"):
        assert len(set(_exam_groups(bare))) == 3


def test_pretrained_fit_does_not_preprocess_the_rois(cohort, monkeypatch):
    import skcalc.deep._estimators as estimators

    rois, _, _ = cohort
    calls = []
    real = estimators.preprocess_rois
    monkeypatch.setattr(estimators, "preprocess_rois",
                        lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    ext = DeepFeatureExtractor(**SMALL).fit(rois)
    assert calls == []  # nothing is learnt from the ROIs
    ext.transform(rois[:2])
    assert calls == [2]
    with pytest.raises(TypeError, match="list of skcalc.ROI"):
        DeepFeatureExtractor(**SMALL).fit(np.zeros((3, 4)))


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("estimator", [DeepROIClassifier(), DeepFeatureExtractor()],
                         ids=lambda e: type(e).__name__)
def test_sklearn_api_conventions(estimator, check):
    check(type(estimator).__name__, estimator)


@parametrize_with_image_checks([DeepFeatureExtractor(input_size=32, batch_size=3)])
def test_image_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- pipelines
def test_pipelines_in_cross_validate_with_grouped_folds(cohort):
    rois, y, groups = cohort
    cv = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=0)
    # "finetune+lgbm" composes the same pieces (see test_fine_tuned_features_differ...)
    for mode in ("pretrained+lgbm", "finetune"):
        pipe = make_deep_pipeline("resnet50", mode, weights=None, epochs=1, **SMALL)
        result = cross_validate(pipe, rois, y, groups=groups, cv=cv,
                                scoring=["roc_auc", "recall"], error_score="raise")
        assert len(result["test_roc_auc"]) == 2, mode
        assert np.isfinite(result["test_roc_auc"]).all(), mode


def test_pipeline_in_grid_search(cohort):
    rois, y, groups = cohort
    pipe = make_deep_pipeline("resnet50", "pretrained+lgbm", weights=None, **SMALL)
    search = GridSearchCV(pipe, {"classify__threshold": [0.3, 0.5]}, scoring="roc_auc",
                          cv=StratifiedGroupKFold(n_splits=2), error_score="raise")
    search.fit(rois, y, groups=groups)
    assert search.best_params_["classify__threshold"] in (0.3, 0.5)
    assert search.predict_proba(rois).shape == (len(rois), 2)
    predicted = search.predict(rois)
    threshold = search.best_params_["classify__threshold"]
    np.testing.assert_array_equal(predicted, search.predict_proba(rois)[:, 1] >= threshold)


def test_make_deep_pipeline_modes():
    pipe = make_deep_pipeline("vgg16", "finetune+lgbm", weights=None, input_size=32, lr=1e-3)
    params = pipe.get_params()
    assert params["features__fine_tune"] is True and params["features__lr"] == 1e-3
    assert params["features__arch"] == "vgg16" and params["classify__threshold"] == 0.4
    assert [n for n, _ in make_deep_pipeline(mode="finetune").steps] == ["classify"]
    assert make_deep_pipeline().get_params()["classify__estimator__weights"] == "imagenet"
    no_resample = make_deep_pipeline(mode="pretrained+lgbm", resample=False)
    assert no_resample.get_params()["resample"] == "passthrough"
    with pytest.raises(ValueError, match="mode must be one of"):
        make_deep_pipeline(mode="scratch")
