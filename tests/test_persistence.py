"""Model files: round trips, and loading never runs code from the file."""

import importlib
import json
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import skcalc.persistence as persistence
from skcalc.datasets import make_calcification_cohort
from skcalc.exceptions import SkcalcWarning
from skcalc.persistence import TRUSTED_TYPES, ModelFileError, load_model, save_model
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
    assert not (set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
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
    real_load = sio.load

    def spy(file, trusted=None):
        seen.append(list(trusted))
        return real_load(file, trusted=trusted)

    monkeypatch.setattr(sio, "load", spy)
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
