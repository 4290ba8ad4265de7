"""Model files that are safe to share: skops instead of pickle, with a version check.

A pickle (or joblib) file can run arbitrary code when it is loaded. skcalc's model files are
written with :mod:`skops.io`, whose loader first lists every type named in the file and
builds objects only after each of them has been checked against the types it is told to
trust; it never imports a module or calls a constructor before that check. skcalc passes
skops an explicit allow-list, :data:`TRUSTED_TYPES` (skcalc's own estimators, the
imbalanced-learn and LightGBM types the paper's pipeline is made of, and the private
scikit-learn classes a fitted calibration holds; public scikit-learn and numpy types are
trusted by skops itself), plus only what the caller adds with ``trusted=``. The
file's own list of types is never used as the allow-list.

A model file is data, not instructions. On top of the allow-list, :func:`load_model`:

* records and trusts **public** type names (``skcalc.segmentation.HDoGRegSegmenter``), and
  maps the private paths older files name (:data:`LEGACY_TYPE_NAMES`), so moving a module
  does not break saved models; a skcalc type this version does not have is refused with a
  message naming the version that wrote the file, without importing anything it names;
* never calls a trusted type with arguments from the file (a skops
  ``ConstructorFromReduceNode``), and rebuilds each LightGBM booster with
  ``lightgbm.Booster(model_str=...)`` from its model string alone;
* never lets the file choose what skcalc reads or writes: cache locations (``memory``) are
  replaced by an in-process cache (with a warning), a weights path in a fitted segmenter's
  ``regressor`` by the weights stored in the file, a weights path of a fitted deep
  estimator (:mod:`skcalc.deep`, whose network is stored in the file) by ``None`` (with a
  warning: a refit then starts from a random initialisation), and a file that needs a path
  to work (an unfitted segmenter's or deep estimator's weights file, LightGBM file
  parameters, any other parameter that looks like a path) is refused. Pass such settings
  when you use the model.
* refuses a file whose model is not a scikit-learn estimator.

``joblib.dump``/``joblib.load`` keep working for users who want them (and trust the file).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import SkcalcWarning

__all__ = ["LEGACY_TYPE_NAMES", "TRUSTED_TYPES", "ModelFileError", "load_model", "save_model"]

_FORMAT = "skcalc-model"
_FORMAT_VERSION = 1

#: Libraries whose versions are recorded in a model file; a mismatch on load is warned about
#: (their estimators may compute differently).
_LIBRARIES = ("numpy", "scikit-learn", "imbalanced-learn", "lightgbm", "skops")


def _sklearn_calibration_types() -> tuple[str, ...]:
    # A fitted CalibratedClassifierCV keeps each fold's (model, calibrators) in private
    # classes that hold only arrays, estimators and the method's name; skops trusts public
    # scikit-learn types only. _TemperatureScaling exists from scikit-learn 1.8.
    import sklearn.calibration

    names = ("_CalibratedClassifier", "_SigmoidCalibration", "_TemperatureScaling")
    return tuple(f"sklearn.calibration.{n}" for n in names if hasattr(sklearn.calibration, n))


#: Every type a model made by :func:`skcalc.pipeline.make_calcification_pipeline` contains
#: that skops does not trust by default, by its **public** name. Files record these names
#: (not the private module a class happens to live in), so moving a file inside skcalc
#: never breaks a saved model; older files naming private paths are mapped on load
#: (:data:`LEGACY_TYPE_NAMES`). The LightGBM booster is not in the list: skcalc rebuilds
#: it from its model string alone (``lightgbm.Booster(model_str=...)``).
TRUSTED_TYPES = (
    # skcalc
    "skcalc.segmentation.HDoGRegSegmenter",
    # the regression CNN as plain arrays (never a pickled torch module)
    "skcalc.segmentation.RegressorWeights",
    # the candidate filter as plain data (a LightGBM model text and calibration arrays)
    "skcalc.segmentation.CandidateFilter",
    "skcalc.masks.MaskBuilder",
    "skcalc.features.LocalFeatureExtractor",
    "skcalc.features.TopologyFeatures",
    "skcalc.aggregation.BagOfClustersAggregator",
    "skcalc.aggregation.MeanStdAggregator",
    "skcalc.classification.ThresholdedClassifier",
    "skcalc.resampling.SafeSMOTEENN",
    "skcalc.utils.InProcessMemory",
    "skcalc.pipeline._CalcificationPipeline",
    "skcalc._fitcache.PipelineMemory",
    "skcalc.feature_selection.ImportanceSelector",
    "skcalc.calibration.CalibratedClassifier",
    # CalibratedClassifier's fitted folds and calibrators (isotonic: public, trusted by skops)
    *_sklearn_calibration_types(),
    # the deep baselines hold their networks as plain arrays (never a torch module)
    "skcalc.deep.DeepROIClassifier",
    "skcalc.deep.DeepFeatureExtractor",
    # imbalanced-learn / LightGBM / standard library
    "imblearn.pipeline.Pipeline",
    "imblearn.over_sampling.SMOTE",
    "imblearn.under_sampling.EditedNearestNeighbours",
    "lightgbm.LGBMClassifier",
    # SimpleImputer records its input dtype (a dtype, no code)
    "numpy.dtype",
    "collections.OrderedDict",
)

#: Names recorded by earlier skcalc versions (private module paths) -> public names.
LEGACY_TYPE_NAMES = {
    # skcalc 0.1 layout
    "skcalc.segmentation._segmenter.HDoGRegSegmenter": "skcalc.segmentation.HDoGRegSegmenter",
    "skcalc.segmentation._segmenter.RegressorWeights": "skcalc.segmentation.RegressorWeights",
    "skcalc.features._local.LocalFeatureExtractor": "skcalc.features.LocalFeatureExtractor",
    "skcalc.features._topology.TopologyFeatures": "skcalc.features.TopologyFeatures",
    "skcalc.utils._caching.InProcessMemory": "skcalc.utils.InProcessMemory",
    # private paths of the third-party types, as skops records them
    "imblearn.over_sampling._smote.base.SMOTE": "imblearn.over_sampling.SMOTE",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours."
    "EditedNearestNeighbours": "imblearn.under_sampling.EditedNearestNeighbours",
    "lightgbm.sklearn.LGBMClassifier": "lightgbm.LGBMClassifier",
}

_BOOSTER_NAMES = ("lightgbm.basic.Booster", "lightgbm.Booster")
_BOOSTER_MARK = "__skcalc_lightgbm_model_string__"

#: LightGBM parameters (and aliases) that name files: a model file may not carry them.
_LIGHTGBM_FILE_PARAMS = frozenset(
    """input_model model_input model_in output_model model_output model_out output_result
    predict_result prediction_result predict_name prediction_name pred_name name_pred
    convert_model convert_model_file data train train_data train_data_file data_filename
    valid test valid_data valid_data_file test_data test_data_file valid_filenames
    initscore_filename init_score_filename init_score_file init_score input_init_score
    forcedsplits_filename forced_splits_filename forced_splits_file forced_splits
    forcedbins_filename machine_list_filename machine_list_file machine_list mlist
    save_binary is_save_binary is_save_binary_file""".split()
)


class ModelFileError(ValueError):
    """A model file is not an skcalc model, is damaged, or holds untrusted types."""


def _split(name: str) -> tuple[str, str]:
    module, _, cls = name.rpartition(".")
    return module, cls


def _name_map() -> dict[str, str]:
    """Recorded type name -> public name: the legacy names and the current private ones."""
    import importlib

    mapping = dict(LEGACY_TYPE_NAMES)
    for public in TRUSTED_TYPES:
        module, cls = _split(public)
        try:
            obj = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):  # pragma: no cover - all are dependencies
            continue
        recorded = f"{getattr(obj, '__module__', module)}.{getattr(obj, '__qualname__', cls)}"
        mapping[recorded] = public
    return mapping


def _nodes(node: Any):
    """Every schema node (a dict with ``__loader__``), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__loader__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _node_name(node: dict) -> str:
    return f"{node.get('__module__')}.{node.get('__class__')}"


def _rename_types(schema: dict, mapping: dict[str, str]) -> None:
    for node in _nodes(schema):
        public = mapping.get(_node_name(node))
        if public is not None:
            node["__module__"], node["__class__"] = _split(public)


def _schema_version(schema: dict) -> str:
    """The skcalc version a payload's schema records, for messages ("unknown" if none)."""
    try:
        return str(json.loads(schema["content"]["skcalc_version"]["content"]))
    except (KeyError, TypeError, ValueError):
        return "unknown"


def _read_zip(path: Path) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    if "schema.json" not in files:
        raise ValueError("no schema.json")
    return json.loads(files["schema.json"]), files


def _write_zip(schema: dict, files: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, json.dumps(schema) if name == "schema.json" else data)
    return buf.getvalue()


def _prepare_schema(schema: dict, path: Path, allowed: set[str]) -> None:
    """Map old type names, check the schema and take the LightGBM boosters out of it.

    Refuses a skcalc type this version does not have (naming the file's version), any
    trusted type built by calling it with arguments from the file, and boosters in any
    form other than a model string. Each booster node becomes a plain JSON value holding
    the model string; :func:`_rebuild` turns it into ``lightgbm.Booster(model_str=...)``.
    """
    _rename_types(schema, _name_map())
    written_by = _schema_version(schema)
    for node in list(_nodes(schema)):
        name = _node_name(node)
        loader = node.get("__loader__")
        if name in _BOOSTER_NAMES:
            handle = None
            content = node.get("content")
            if loader == "ObjectNode" and isinstance(content, dict):
                inner = (content.get("content") or {}).get("_handle") or {}
                if inner.get("__loader__") == "JsonNode":
                    try:
                        handle = json.loads(inner.get("content"))
                    except (TypeError, ValueError):
                        handle = None
            if not isinstance(handle, str) or not handle.startswith("tree"):
                raise ModelFileError(
                    f"{path}: the LightGBM booster is not stored as a model string "
                    f"({loader}); refusing to build it from the file's arguments"
                )
            node_id = node.get("__id__")
            node.clear()
            node.update(
                {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": json.dumps({_BOOSTER_MARK: handle}),
                    "is_json": True,
                    "__id__": node_id,
                }
            )
            continue
        # A dtype is rebuilt from its type string alone (numpy.dtype("<f8")): data, no code.
        if name == "numpy.dtype" and loader == "DTypeNode":
            continue
        if name in allowed and loader not in ("ObjectNode", "TypeNode", "DictNode"):
            raise ModelFileError(
                f"{path}: {name} is stored as a {loader}; skcalc never calls a type with "
                "arguments from a model file"
            )
        if name.startswith("skcalc.") and name not in allowed:
            # Nothing is imported from a name the file chose: an unknown skcalc type is a
            # file from another version (or an edited one).
            raise ModelFileError(
                f"{path}: written by skcalc {written_by}, whose type {name} does not exist "
                f"in skcalc {__version__}; load it with skcalc {written_by} and retrain, or "
                "save it again from there"
            )


_ATOMS = (str, bytes, int, float, complex, bool, type(None), type)


def _rebuild(obj: Any, path: Path, found: dict[str, list]) -> Any:
    """Rebuild boosters from their model strings and neutralise path-like parameters."""
    import numpy as np

    memo: dict[int, Any] = {}

    def visit(x: Any, where: str) -> Any:
        if isinstance(x, _ATOMS) or isinstance(x, (np.ndarray, np.generic)):
            return x
        if id(x) in memo:
            return memo[id(x)]
        if isinstance(x, dict) and set(x) == {_BOOSTER_MARK}:
            import lightgbm

            try:
                booster = lightgbm.Booster(model_str=x[_BOOSTER_MARK])
            except Exception as exc:
                raise ModelFileError(f"{path}: damaged LightGBM model string ({exc})") from None
            memo[id(x)] = booster
            return booster
        memo[id(x)] = x
        if isinstance(x, dict):
            for k in list(x):
                x[k] = visit(x[k], f"{where}[{k!r}]")
        elif isinstance(x, list):
            x[:] = [visit(v, f"{where}[{i}]") for i, v in enumerate(x)]
        elif type(x) is tuple:
            new = tuple(visit(v, f"{where}[{i}]") for i, v in enumerate(x))
            if any(a is not b for a, b in zip(new, x)):
                memo[id(x)] = new
                return new
        elif hasattr(x, "__dict__") and not isinstance(x, type):
            attrs = vars(x)
            for k in list(attrs):
                v = attrs[k]
                nv = visit(v, f"{where}.{k}")
                if nv is not v:
                    attrs[k] = nv
            _neutralise(x, where, path, found)
        return x

    return visit(obj, "model")


def _looks_like_path(value: Any) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and (
        "/" in value or "\\" in value or value.startswith("~") or value.startswith(".")
    )


def _neutralise(est: Any, where: str, path: Path, found: dict[str, list]) -> None:
    """Reset cache locations and refuse parameters that name files, on one loaded object."""
    from ._fitcache import PipelineMemory
    from .segmentation import CandidateFilter, HDoGRegSegmenter, RegressorWeights
    from .utils import InProcessMemory

    attrs = vars(est)
    if type(est).__module__.startswith("skcalc.") and hasattr(type(est), "_get_param_names"):
        # Parameters added since the file was written take their defaults, which keep the
        # saved behaviour (e.g. the segmenter's calibrated-detection settings only act with
        # threshold="auto", which older files cannot hold).
        import inspect

        for name, param in inspect.signature(type(est).__init__).parameters.items():
            if name != "self" and name not in attrs and param.default is not param.empty:
                attrs[name] = param.default
    if "memory" in attrs and attrs["memory"] is not None:
        old = attrs["memory"]
        skcalc_owned = type(est).__module__.startswith("skcalc.")
        if isinstance(old, PipelineMemory) and skcalc_owned:
            # In-process memo of a skcalc pipeline: no location; a fresh one is equivalent.
            attrs["memory"] = PipelineMemory()
        else:
            attrs["memory"] = InProcessMemory() if skcalc_owned else None
            if not isinstance(old, InProcessMemory):
                found["memory"].append(f"{where}.memory={old!r}")
    if isinstance(est, (RegressorWeights, CandidateFilter)):
        # Their digest keys a per-process cache of built models: derive it from the content.
        est.refresh_digest()
    if isinstance(est, HDoGRegSegmenter):
        # A path names a file to open; the fitted model is stored in the file: keep it.
        for name, words, kind in (("regressor", ("default", "auto"), "weights file"),
                                  ("candidate_filter", ("default",), "model file")):
            value = attrs.get(name)
            if isinstance(value, os.PathLike) or (isinstance(value, str) and value not in words):
                if name + "_" not in attrs:
                    raise ModelFileError(
                        f"{path}: {where}.{name} names a {kind} ({os.fspath(value)!r}); a "
                        f"model file never chooses which files skcalc opens. Pass {name}=... "
                        "when you build the segmenter instead"
                    )
                attrs[name] = attrs[name + "_"]
                found["regressor"].append(f"{where}.{name}={os.fspath(value)!r}")
        training = attrs.get("training_params")
        if isinstance(training, dict):
            bad = {k: v for k, v in training.items() if _looks_like_path(v)}
            if bad:
                raise ModelFileError(
                    f"{path}: {where}.training_params name files {bad}; refusing to load"
                )
    # skops built it from skcalc.deep, so the module is loaded: looking it up in sys.modules
    # keeps torch out of loading models that have no network.
    deep = sys.modules.get("skcalc.deep")
    if deep is not None and isinstance(est, (deep.DeepROIClassifier, deep.DeepFeatureExtractor)):
        value = attrs.get("weights")
        # Any string but "imagenet" (torch's own cache) is read as a file by fit.
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value != "imagenet"):
            if attrs.get("network_") is None:
                raise ModelFileError(
                    f"{path}: {where}.weights names a weights file ({os.fspath(value)!r}) of "
                    "an unfitted network; a model file never chooses which files skcalc "
                    "opens. Pass weights=... when you build the estimator instead"
                )
            # predict and transform use the stored network_ only; weights is read by fit.
            attrs["weights"] = None
            found["weights"].append(f"{where}.weights={os.fspath(value)!r}")
    module = type(est).__module__
    if module.startswith("lightgbm.") and type(est).__name__ != "Booster":
        params = dict(attrs.get("_other_params") or {})
        params.update(attrs)
        params.update(attrs.get("params") or {})
        bad = sorted(k for k in _LIGHTGBM_FILE_PARAMS if params.get(k) not in (None, "", False, 0))
        if bad:
            raise ModelFileError(
                f"{path}: {where} carries LightGBM file parameters {bad}; a model file "
                "never chooses which files skcalc reads or writes"
            )
    get_names = getattr(type(est), "_get_param_names", None)
    if callable(get_names):
        try:
            names = get_names()
        except Exception:  # noqa: BLE001 - a class without a proper signature
            names = []
        for name in names:
            if name in ("memory", "regressor"):
                continue
            if _looks_like_path(attrs.get(name)):
                raise ModelFileError(
                    f"{path}: {where}.{name}={attrs[name]!r} looks like a file path; a model "
                    "file never chooses which files skcalc opens. Set it at run time"
                )


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "not installed"
    return out


def json_default(obj: Any) -> Any:
    # Metadata is informative: what the strict writer cannot encode is stored as text.
    from .io._writers import json_default as strict

    try:
        return strict(obj)
    except TypeError:
        return str(obj)


def save_model(model: Any, path: str | os.PathLike, *, metadata: dict | None = None) -> Path:
    """Write a fitted model to ``path`` with skops, atomically.

    The file records the skcalc version, the versions of numpy, scikit-learn,
    imbalanced-learn, LightGBM and skops, the creation time and ``metadata``.

    Parameters
    ----------
    model : estimator
        Usually a fitted pipeline from :func:`skcalc.pipeline.make_calcification_pipeline`.
    path : str or path-like
        Destination file (conventionally ``.skops``); its folder is created if needed.
    metadata : dict, optional
        Extra information stored beside the model (training set, date, ...). It is stored
        as JSON text (numpy values and paths converted, anything else as its ``str``), so it
        can never add a type to the file.

    Returns
    -------
    pathlib.Path
        The written file.

    Warns
    -----
    SkcalcWarning
        When the model holds types outside :data:`TRUSTED_TYPES` (a custom step):
        :func:`load_model` will then need them in ``trusted=``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skcalc.persistence import load_model, save_model
    >>> clf = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> path = save_model(clf, os.path.join(tempfile.mkdtemp(), "m.skops"), metadata={"n": 2})
    >>> model, info = load_model(path, return_metadata=True)
    >>> model.predict([[0.9]]).tolist(), info["metadata"]
    ([1], {'n': 2})
    """
    import skops.io as sio

    from .io._writers import atomic_path

    path = Path(os.fspath(path)).expanduser()
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder; give the model file's name (e.g. model.skops)")
    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "skcalc_version": __version__,
        "library_versions": _library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "metadata": json.dumps(dict(metadata or {}), default=json_default),
        "model": model,
    }
    data = sio.dumps(payload, compression=zipfile.ZIP_DEFLATED)
    # Record public type names (see TRUSTED_TYPES), so that the file survives refactors.
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    schema = json.loads(files["schema.json"])
    _rename_types(schema, _name_map())
    data = _write_zip(schema, files)
    extra = sorted(
        set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES) - set(_BOOSTER_NAMES)
    )
    if extra:
        warnings.warn(
            f"{path}: the model holds types skcalc does not trust by default {extra}; "
            "load it with load_model(..., trusted=[...]) listing them",
            SkcalcWarning,
            stacklevel=2,
        )
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return path


def _check_trusted(trusted: Iterable[str] | None) -> set[str]:
    if trusted is None:
        return set()
    if isinstance(trusted, (str, bytes, bool)) or not all(isinstance(t, str) for t in trusted):
        raise TypeError(
            "trusted must be a list of type names such as 'mypackage.module.MyStep', "
            f"got {trusted!r}"
        )
    return set(trusted)


def _not_skops_reason(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":
        return "it is a pickle/joblib file; skcalc never loads those (they can run code)"
    return "it is not a skops (zip) file"


def load_model(
    path: str | os.PathLike,
    *,
    trusted: Iterable[str] | None = None,
    strict_version: bool = False,
    return_metadata: bool = False,
) -> Any:
    """Load a model written by :func:`save_model` without unpickling arbitrary objects.

    Parameters
    ----------
    path : str or path-like
        The model file.
    trusted : list of str, optional
        Extra type names (``"module.Class"``) to trust, for models with custom steps.
        Every other type not in :data:`TRUSTED_TYPES` (or skops' own safe defaults) is
        refused before anything is built.
    strict_version : bool, default=False
        Refuse files written by another skcalc version (otherwise: a warning).
    return_metadata : bool, default=False
        Also return a dict with ``metadata`` (as given to :func:`save_model`),
        ``skcalc_version``, ``library_versions`` and ``created``.

    Returns
    -------
    model : estimator
    info : dict
        Only with ``return_metadata=True``.

    Raises
    ------
    ModelFileError
        The file does not exist, is not an skcalc model (a pickle, another skops file),
        is damaged, holds types that are not trusted, or (with ``strict_version``) was
        written by another skcalc version.

    Warns
    -----
    SkcalcWarning
        The file was written by another skcalc version, or with other versions of the
        libraries the model is made of.
    """
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    path = Path(os.fspath(path)).expanduser()
    allowed = set(TRUSTED_TYPES) | _check_trusted(trusted)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not an skcalc model file: {_not_skops_reason(path)}")
    try:
        schema, files = _read_zip(path)
    except Exception as exc:  # damaged zip or schema: nothing has been built yet
        raise ModelFileError(f"{path}: not a readable skops file ({exc})") from exc
    # Old private type names -> public ones; boosters out of the schema; no trusted type
    # called with arguments from the file. Nothing is imported from the file's names
    # except skcalc's own modules, to check that its types still exist.
    _prepare_schema(schema, path, allowed)
    data = _write_zip(schema, files)
    try:
        found = set(sio.get_untrusted_types(data=data))
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable skops file ({exc})") from exc
    refused = sorted(found - allowed)
    if refused:
        raise ModelFileError(
            f"{path}: refusing to load untrusted types {refused}; pass trusted=[...] only "
            "if you know where the file comes from"
        )
    try:
        # The allow-list, not the file's own list: skops audits the whole tree against it
        # again before constructing anything.
        payload = sio.loads(data, trusted=sorted(allowed))
    except UntrustedTypesFoundException as exc:
        raise ModelFileError(f"{path}: refusing to load untrusted types ({exc})") from exc
    except Exception as exc:
        raise ModelFileError(
            f"{path}: could not be loaded by skcalc {__version__} (file written by skcalc "
            f"{_schema_version(schema)}; {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or "model" not in payload:
        raise ModelFileError(
            f"{path}: not an skcalc model file (a skops file not written by "
            "skcalc.persistence.save_model)"
        )
    fmt = payload.get("format_version")
    if not isinstance(fmt, int) or not 1 <= fmt <= _FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format {fmt!r} is not supported by skcalc {__version__} "
            f"(reads formats 1-{_FORMAT_VERSION}); upgrade skcalc"
        )
    saved = payload.get("skcalc_version")
    if saved != __version__:
        msg = f"{path} was written by skcalc {saved}; this is skcalc {__version__}"
        if strict_version:
            raise ModelFileError(msg + " (strict_version=True)")
        warnings.warn(msg + "; predictions may differ", SkcalcWarning, stacklevel=2)
    libs = payload.get("library_versions") or {}
    current = _library_versions()
    differ = {k: (v, current.get(k)) for k, v in libs.items() if current.get(k) != v}
    if differ:
        text = ", ".join(f"{k} {old} (now {new})" for k, (old, new) in sorted(differ.items()))
        warnings.warn(
            f"{path} was written with {text}; predictions may differ",
            SkcalcWarning,
            stacklevel=2,
        )
    found_paths: dict[str, list] = {"memory": [], "regressor": [], "weights": []}
    model = _rebuild(payload["model"], path, found_paths)
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        raise ModelFileError(
            f"{path}: the file holds a {type(model).__name__}, not a scikit-learn estimator"
        )
    named = found_paths["memory"] + found_paths["regressor"] + found_paths["weights"]
    if named:
        deep = (
            "; the deep networks' weights are now None, so a refit starts from a random "
            "initialisation (set weights=... to refit from a file)"
            if found_paths["weights"] else ""
        )
        warnings.warn(
            f"{path}: the model file named cache folders or weight files "
            f"({', '.join(named)}); a model file never chooses where skcalc reads from: "
            "caches are kept in this process and the stored weights are used (pass "
            f"memory=... at run time to share a cache){deep}",
            SkcalcWarning,
            stacklevel=2,
        )
    if not return_metadata:
        return model
    try:
        metadata = json.loads(payload.get("metadata") or "{}")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged metadata ({exc})") from exc
    info = {
        "metadata": metadata,
        "skcalc_version": saved,
        "library_versions": dict(libs),
        "created": payload.get("created"),
        "format_version": fmt,
    }
    return model, info
