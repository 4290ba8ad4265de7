"""Model files: round trips, and loading never runs code from the file."""

import importlib
import json
import os
import pickle
import shutil
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import skops.io as sio
from lightgbm import Booster
from lightgbm.basic import LightGBMError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import skcalc.persistence as persistence
from skcalc import ROI
from skcalc.datasets import make_calcification_cohort
from skcalc.exceptions import SkcalcWarning
from skcalc.persistence import (
    LEGACY_TYPE_NAMES,
    TRUSTED_TYPES,
    ModelFileError,
    load_model,
    save_model,
)
from skcalc.pipeline import make_calcification_pipeline

# Synthetic ROIs with 0-1 calcifications are valid and warned about; not the subject here.
pytestmark = pytest.mark.filterwarnings("ignore:.*fewer than two calcifications")


class WritesMarker:
    """Writes a file when unpickled/unpersisted: the stand-in for malicious code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __getstate__(self):
        return {"marker": self.marker}

    def __setstate__(self, state):
        with open(state["marker"], "w") as fh:
            fh.write("code ran")
        self.__dict__.update(state)


class CustomScaler(StandardScaler):
    """A user's own step: not in TRUSTED_TYPES."""


def type_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def skcalc_payload(model, **changes):
    payload = {
        "format": "skcalc-model",
        "format_version": 1,
        "skcalc_version": persistence.__version__,
        "library_versions": persistence._library_versions(),
        "created": "2024-01-01T00:00:00+00:00",
        "metadata": "{}",
        "model": model,
    }
    payload.update(changes)
    return payload


@pytest.fixture(scope="module")
def cohort():
    rois, y, _ = make_calcification_cohort(n_rois=14, random_state=3)
    assert 0 < y.sum() < len(y)
    return rois, y


@pytest.fixture(scope="module", params=["bag", "meanstd"])
def fitted(request, cohort):
    rois, y = cohort
    pipe = make_calcification_pipeline(n_clusters=4, aggregation=request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkcalcWarning)  # ROIs with < 2 calcifications
        pipe.fit(rois, y)
    return pipe


@pytest.fixture
def small_model():
    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def test_round_trip_identical_predictions(fitted, cohort, tmp_path):
    rois, _ = cohort
    path = tmp_path / "sub" / "model.skops"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)  # no "untrusted type" warning
        assert save_model(fitted, path, metadata={"n": np.int64(3), "src": tmp_path}) == path
    # the booster is rebuilt by skcalc from its model string, never built by skops
    found = set(sio.get_untrusted_types(file=path))
    assert found - set(TRUSTED_TYPES) == {"lightgbm.basic.Booster"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)  # same versions: no warning
        model, info = load_model(path, return_metadata=True)
    np.testing.assert_array_equal(model.predict_proba(rois), fitted.predict_proba(rois))
    np.testing.assert_array_equal(model.predict(rois), fitted.predict(rois))
    assert info["metadata"] == {"n": 3, "src": str(tmp_path)}
    assert info["skcalc_version"] == persistence.__version__
    assert set(info["library_versions"]) == {
        "numpy", "scikit-learn", "imbalanced-learn", "lightgbm", "skops"
    }  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["model.skops"]


def test_trusted_types_are_real_classes():
    for name in TRUSTED_TYPES:
        module, _, cls = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "temperature"])
def test_calibrated_classifier_round_trip_needs_no_trusted(method, tmp_path):
    import sklearn.calibration

    from skcalc.calibration import CalibratedClassifier

    if method == "temperature" and not hasattr(sklearn.calibration, "_TemperatureScaling"):
        pytest.skip("temperature scaling needs scikit-learn >= 1.8")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + rng.normal(size=120) > 0.8).astype(int)
    groups = np.repeat(np.arange(60), 2)
    clf = CalibratedClassifier(LogisticRegression(), method=method, cv=3).fit(X, y, groups=groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)  # no "untrusted type" warning
        path = save_model(clf, tmp_path / "calibrated.skops")
        model = load_model(path)
    np.testing.assert_array_equal(model.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))


def test_joblib_round_trip(fitted, cohort, tmp_path):
    rois, _ = cohort
    joblib.dump(fitted, tmp_path / "model.joblib")
    model = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(model.predict_proba(rois), fitted.predict_proba(rois))


def test_custom_type_warned_on_save_and_refused_unless_trusted(tmp_path):
    scaler = CustomScaler().fit([[0.0], [2.0]])
    path = tmp_path / "custom.skops"
    with pytest.warns(SkcalcWarning, match="does not trust"):
        save_model(scaler, path)
    with pytest.raises(ModelFileError, match="untrusted types"):
        load_model(path)
    loaded = load_model(path, trusted=[type_name(CustomScaler)])
    np.testing.assert_array_equal(loaded.mean_, [1.0])


def test_trusted_must_be_a_list_of_names(small_model, tmp_path):
    path = save_model(small_model, tmp_path / "m.skops")
    for bad in (True, "os.system", [1], [str]):
        with pytest.raises(TypeError, match="trusted must be a list"):
            load_model(path, trusted=bad)


def test_object_with_setstate_is_never_built(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skops"
    sio.dump(skcalc_payload(WritesMarker(marker)), path)
    with pytest.raises(ModelFileError, match=r"untrusted types .*WritesMarker"):
        load_model(path)
    assert not marker.exists()
    # control: the file really runs the code when its type is trusted
    sio.load(path, trusted=[type_name(WritesMarker)])
    assert marker.exists()


def edit_schema(path, out, edit):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    return out


def os_system_node(command):
    """A skops node that calls os.system(command) when constructed."""
    return {
        "__class__": "system",
        "__module__": "os",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps(command),
                    "is_json": True,
                }
            ],
        },
    }


@pytest.mark.parametrize("where", ["model", "metadata", "nested"])
def test_edited_schema_calling_os_system_is_refused(small_model, tmp_path, where):
    marker = tmp_path / "pwned"
    good = save_model(small_model, tmp_path / "good.skops")
    node = os_system_node(f"touch {marker}")

    def edit(schema):
        content = schema["content"]
        if where == "nested":  # deep inside the estimator's attributes
            content["model"]["content"]["content"]["coef_"] = node
        else:
            content[where] = node

    evil = edit_schema(good, tmp_path / "evil.skops", edit)
    with pytest.raises(ModelFileError, match=r"untrusted types \['os.system'\]"):
        load_model(evil)
    assert not marker.exists()
    # control: the edited file is a working exploit once its types are trusted
    sio.load(evil, trusted=sio.get_untrusted_types(file=evil))
    assert marker.exists()


def test_allow_list_not_file_list_is_passed_to_skops(small_model, tmp_path, monkeypatch):
    """Even if the audit were fooled, skops itself only trusts the allow-list."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.skops"
    sio.dump(skcalc_payload(WritesMarker(marker)), path)
    seen = []
    real_loads = sio.loads

    def spy(data, trusted=None):
        seen.append(list(trusted))
        return real_loads(data, trusted=trusted)

    monkeypatch.setattr(sio, "loads", spy)
    monkeypatch.setattr(sio, "get_untrusted_types", lambda **kw: [])  # a lying audit
    with pytest.raises(ModelFileError, match="untrusted"):
        load_model(path)
    assert not marker.exists()
    assert set(seen[0]) == set(TRUSTED_TYPES)
    load_model(save_model(small_model, tmp_path / "m.skops"), trusted=["x.Y"])
    assert set(seen[1]) == set(TRUSTED_TYPES) | {"x.Y"}


def test_pickle_renamed_skops_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(WritesMarker(marker)))
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)
    assert not marker.exists()
    joblib_path = tmp_path / "joblib.skops"
    joblib.dump(WritesMarker(marker), joblib_path)
    with pytest.raises(ModelFileError, match="not an skcalc model"):
        load_model(joblib_path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # control: unpickling does run the code
    assert marker.exists()


def test_non_skcalc_and_damaged_files_are_refused(small_model, tmp_path):
    plain = tmp_path / "plain.skops"
    sio.dump(small_model, plain)
    with pytest.raises(ModelFileError, match="not an skcalc model"):
        load_model(plain)
    sio.dump({"format": "something-else", "model": small_model}, plain)
    with pytest.raises(ModelFileError, match="not an skcalc model"):
        load_model(plain)
    good = save_model(small_model, tmp_path / "good.skops").read_bytes()
    damaged = tmp_path / "damaged.skops"
    damaged.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelFileError):
        load_model(damaged)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.skops")
    folder = tmp_path / "folder.skops"
    folder.mkdir()
    with pytest.raises(ModelFileError, match="folder"):
        save_model(small_model, folder)


def test_newer_file_format_is_refused(small_model, tmp_path):
    path = tmp_path / "future.skops"
    sio.dump(skcalc_payload(small_model, format_version=99), path)
    with pytest.raises(ModelFileError, match="format 99 is not supported"):
        load_model(path)


def test_skcalc_version_mismatch_warns_or_refuses(small_model, tmp_path, monkeypatch):
    path = tmp_path / "old.skops"
    with monkeypatch.context() as m:
        m.setattr(persistence, "__version__", "0.0.1")
        save_model(small_model, path)
    with pytest.warns(SkcalcWarning, match=r"written by skcalc 0\.0\.1"):
        model = load_model(path)
    assert model.predict([[3.0]]).tolist() == [1]
    with pytest.raises(ModelFileError, match=r"skcalc 0\.0\.1.*strict_version"):
        load_model(path, strict_version=True)
    # the same file at the current version loads silently
    save_model(small_model, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkcalcWarning)
        load_model(path, strict_version=True)


def test_library_version_mismatch_warns(small_model, tmp_path, monkeypatch):
    path = tmp_path / "m.skops"
    with monkeypatch.context() as m:
        real = persistence._library_versions()
        m.setattr(persistence, "_library_versions", lambda: {**real, "lightgbm": "1.0.0"})
        save_model(small_model, path)
    with pytest.warns(SkcalcWarning, match=r"lightgbm 1\.0\.0 \(now "):
        load_model(path, strict_version=True)


# ----------------------------------------------------------------- crafted model files
DATA = os.path.join(os.path.dirname(__file__), "data")


def fixture_copy(name, tmp_path):
    """A copy of a crafted model file of tests/data (they are made by make_attack_models.py)."""
    return shutil.copy(os.path.join(DATA, name), tmp_path / name)


def tiny_roi():
    yy, xx = np.mgrid[:32, :32]
    img = 0.3 + 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / (2 * 1.5**2))
    return ROI(img, meta={"roi_id": "a"})


def test_cache_folder_named_by_the_file_is_never_used(tmp_path, monkeypatch):
    """issue 11.1: a model's ``memory`` made predict read joblib pickles from a folder."""
    path = fixture_copy("attack_memory_folder.skops", tmp_path)
    work = tmp_path / "work"
    planted = work / "skcalc-planted-cache"
    planted.mkdir(parents=True)
    (planted / "joblib").mkdir()
    (planted / "joblib" / "planted.pkl").write_bytes(pickle.dumps(WritesMarker(work / "pwned")))
    monkeypatch.chdir(work)
    with pytest.warns(SkcalcWarning, match="skcalc-planted-cache"):
        seg = load_model(path)
    from skcalc.utils import InProcessMemory

    assert isinstance(seg.memory, InProcessMemory)
    before = sorted(str(p) for p in work.rglob("*"))
    seg.transform([tiny_roi()])
    assert sorted(str(p) for p in work.rglob("*")) == before
    assert not (work / "pwned").exists()


def test_weights_path_named_by_the_file_is_never_opened(tmp_path, monkeypatch):
    import skcalc.segmentation._regression as regression

    def fail(*args, **kwargs):
        raise AssertionError("a weights file named by the model file was opened")

    monkeypatch.setattr(regression, "load_weights", fail)
    with pytest.raises(ModelFileError, match=r"regressor names a weights file.*/etc/hostname"):
        load_model(fixture_copy("attack_regressor_path.skops", tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted-weights.pt").write_bytes(b"planted")
    with pytest.warns(SkcalcWarning, match="planted-weights.pt"):
        seg = load_model(fixture_copy("attack_regressor_path_fitted.skops", tmp_path))
    assert seg.regressor is seg.regressor_ is None
    assert seg.transform([tiny_roi()])[0].calcifications.max() == 1
    from sklearn.base import clone

    clone(seg).fit([tiny_roi()])  # a refit neither opens the path


def test_booster_is_never_built_from_file_arguments(tmp_path, monkeypatch):
    calls = []
    real_init = Booster.__init__

    def spy(self, *args, **kwargs):
        calls.append((args, kwargs))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Booster, "__init__", spy)
    with pytest.raises(ModelFileError, match="not stored as a model string"):
        load_model(fixture_copy("attack_booster_reduce.skops", tmp_path))
    assert calls == []
    # control: skops itself would call Booster(None, None, "/etc/hostname")
    bad = tmp_path / "attack_booster_reduce.skops"
    with pytest.raises(LightGBMError):
        sio.load(bad, trusted=sio.get_untrusted_types(file=bad))
    assert calls and calls[0][0][2] == "/etc/hostname"


def test_booster_rebuilt_from_model_string_only(tmp_path):
    clf = load_model(fixture_copy("attack_booster_state.skops", tmp_path))
    booster = clf.booster_
    assert isinstance(booster, Booster)
    assert not hasattr(booster, "planted")
    assert booster.pandas_categorical != ["planted"]
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert clf.predict_proba(X).shape == (5, 2)


@pytest.mark.parametrize(
    "name, match",
    [
        ("attack_lightgbm_params.skops", r"LightGBM file parameters \['output_model'\]"),
        ("attack_trusted_reduce.skops", "never calls a type with arguments"),
        ("attack_not_estimator.skops", "holds a str, not a scikit-learn estimator"),
    ],
)
def test_other_crafted_files_are_refused(tmp_path, name, match):
    with pytest.raises(ModelFileError, match=match):
        load_model(fixture_copy(name, tmp_path))


def test_crafted_fixtures_are_small():
    for name in os.listdir(DATA):
        assert os.path.getsize(os.path.join(DATA, name)) < 400_000, name


# ----------------------------------------------------------------- refactor-proof files
def test_saved_files_name_public_types_only(small_model, tmp_path):
    from lightgbm import LGBMClassifier

    from skcalc.classification import ThresholdedClassifier

    clf = ThresholdedClassifier(LGBMClassifier(n_estimators=2, verbose=-1), threshold=0.4)
    clf.fit(np.arange(20.0).reshape(-1, 1), [0] * 10 + [1] * 10)
    path = save_model(clf, tmp_path / "m.skops")
    names = set(sio.get_untrusted_types(file=path))
    assert "skcalc.classification.ThresholdedClassifier" in names
    assert "lightgbm.LGBMClassifier" in names
    assert not any(part.startswith("_") for n in names if n.startswith("skcalc.")
                   for part in n.split("."))  # fmt: skip


def test_model_saved_by_the_previous_layout_loads_and_predicts_the_same(tmp_path):
    """issue 10.6: tests/data/model_v0_1_layout.skops names private module paths."""
    path = fixture_copy("model_v0_1_layout.skops", tmp_path)
    recorded = set(sio.get_untrusted_types(file=path))
    assert "skcalc.features._local.LocalFeatureExtractor" in recorded
    assert recorded - {"lightgbm.basic.Booster"} <= set(LEGACY_TYPE_NAMES) | set(TRUSTED_TYPES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkcalcWarning)  # written by another version
        model = load_model(path)
    data = np.load(os.path.join(DATA, "model_v0_1_layout_rois.npz"))
    rois = [
        ROI(data[f"image_{i}"], spacing=tuple(data["spacing"][i]), region=data[f"region_{i}"],
            meta={"roi_id": f"r{i}", "bits_stored": 12})
        for i in range(3)
    ]  # fmt: skip
    np.testing.assert_allclose(model.predict_proba(rois)[:, 1], data["proba"], atol=1e-9)
    np.testing.assert_array_equal(model.predict(rois), data["predict"])


@pytest.mark.parametrize("module", ["skcalc._gone", "skcalc.__main__"])
def test_removed_type_fails_naming_the_version(tmp_path, module):
    path = fixture_copy("model_v0_1_layout.skops", tmp_path)

    def rename(schema):
        for node in _all_nodes(schema):
            if node.get("__class__") == "MaskBuilder":
                node["__module__"] = module
        schema["content"]["skcalc_version"]["content"] = json.dumps("0.0.7")

    evil = edit_schema(path, tmp_path / "gone.skops", rename)
    # nothing is imported from the file's names (importing skcalc.__main__ runs the CLI)
    with pytest.raises(ModelFileError, match=r"written by skcalc 0\.0\.7.*" + module):
        load_model(evil)


def _all_nodes(node):
    if isinstance(node, dict):
        if "__loader__" in node:
            yield node
        for v in node.values():
            yield from _all_nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from _all_nodes(v)
