"""Model files that are safe to share: skops instead of pickle, with a version check.

A pickle (or joblib) file can run arbitrary code when it is loaded. skcalc's model files are
written with :mod:`skops.io`, whose loader first lists every type named in the file and
builds objects only after each of them has been checked against the types it is told to
trust; it never imports a module or calls a constructor before that check. skcalc passes
skops an explicit allow-list, :data:`TRUSTED_TYPES` (skcalc's own estimators and the
imbalanced-learn and LightGBM types the paper's pipeline is made of; scikit-learn and numpy
types are trusted by skops itself), plus only what the caller adds with ``trusted=``. The
file's own list of types is never used as the allow-list.

``joblib.dump``/``joblib.load`` keep working for users who want them (and trust the file).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import SkcalcWarning

__all__ = ["TRUSTED_TYPES", "ModelFileError", "load_model", "save_model"]

_FORMAT = "skcalc-model"
_FORMAT_VERSION = 1

#: Libraries whose versions are recorded in a model file; a mismatch on load is warned about
#: (their estimators may compute differently).
_LIBRARIES = ("numpy", "scikit-learn", "imbalanced-learn", "lightgbm", "skops")

#: Every type a model made by :func:`skcalc.pipeline.make_calcification_pipeline` contains
#: that skops does not trust by default, by the name skops records (``module.qualname``).
TRUSTED_TYPES = (
    # skcalc
    "skcalc.segmentation._segmenter.HDoGRegSegmenter",
    # the regression CNN as plain arrays (never a pickled torch module)
    "skcalc.segmentation._segmenter.RegressorWeights",
    "skcalc.masks.MaskBuilder",
    "skcalc.features._local.LocalFeatureExtractor",
    "skcalc.features._topology.TopologyFeatures",
    "skcalc.aggregation.BagOfClustersAggregator",
    "skcalc.aggregation.MeanStdAggregator",
    "skcalc.classification.ThresholdedClassifier",
    "skcalc.resampling.SafeSMOTEENN",
    "skcalc.utils._caching.InProcessMemory",
    # imbalanced-learn / LightGBM / standard library
    "imblearn.pipeline.Pipeline",
    "imblearn.over_sampling._smote.base.SMOTE",
    "imblearn.under_sampling._prototype_selection._edited_nearest_neighbours."
    "EditedNearestNeighbours",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
)


class ModelFileError(ValueError):
    """A model file is not an skcalc model, is damaged, or holds untrusted types."""


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "not installed"
    return out


def _json_default(obj: Any) -> Any:
    # Metadata is informative: what the strict writer cannot encode is stored as text.
    from .io._writers import _json_default as strict

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

    from .io._writers import _atomic_path

    path = Path(os.fspath(path)).expanduser()
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder; give the model file's name (e.g. model.skops)")
    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "skcalc_version": __version__,
        "library_versions": _library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "metadata": json.dumps(dict(metadata or {}), default=_json_default),
        "model": model,
    }
    data = sio.dumps(payload, compression=zipfile.ZIP_DEFLATED)
    extra = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if extra:
        warnings.warn(
            f"{path}: the model holds types skcalc does not trust by default {extra}; "
            "load it with load_model(..., trusted=[...]) listing them",
            SkcalcWarning,
            stacklevel=2,
        )
    with _atomic_path(path) as tmp, open(tmp, "wb") as fh:
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
        found = set(sio.get_untrusted_types(file=path))
    except Exception as exc:  # damaged zip or schema: nothing has been built yet
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
        payload = sio.load(path, trusted=sorted(allowed))
    except UntrustedTypesFoundException as exc:
        raise ModelFileError(f"{path}: refusing to load untrusted types ({exc})") from exc
    except Exception as exc:
        raise ModelFileError(f"{path}: could not be loaded ({type(exc).__name__}: {exc})") from exc
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
    if not return_metadata:
        return payload["model"]
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
    return payload["model"], info
