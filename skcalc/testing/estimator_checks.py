"""Estimator checks for image estimators (those taking lists of ROIs), imblearn style.

scikit-learn's suite skips every data-driven check of an estimator whose
``input_tags.two_d_array`` is False, so image estimators get:

* :data:`DATA_FREE_CHECKS`: the scikit-learn checks that need no data (API conventions);
* skcalc's image checks (``check_image_*(name, estimator, rois)``), run on a few small ROIs
  prepared for the estimator (see
  :func:`skcalc.testing._instance_generator.make_rois_for`).

Use :func:`parametrize_with_image_checks` in a test module, or iterate
:func:`yield_image_checks` by hand. Tabular estimators (2-D input) run scikit-learn's
:func:`~sklearn.utils.estimator_checks.parametrize_with_checks` instead.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils import estimator_checks as _sk

from ..masks import CalcificationMasks
from ..roi import ROI

__all__ = [
    "DATA_FREE_CHECKS",
    "IMAGE_CHECKS",
    "assert_outputs_equal",
    "check_image_clone_pickle_roundtrip",
    "check_image_dtype_invariance",
    "check_image_few_objects",
    "check_image_fit_idempotent",
    "check_image_fit_returns_self",
    "check_image_list_vs_tuple",
    "check_image_no_input_mutation",
    "check_image_order_invariance",
    "parametrize_with_image_checks",
    "yield_image_checks",
]

#: scikit-learn checks that pass an estimator and no data: they test the API conventions
#: (parameters, clone, repr, tags, parameter validation before any data is touched).
#: ``check_param_validation`` feeds a 2-D array to ``fit``, but only with invalid parameters,
#: so a conforming estimator raises before reading the data.
DATA_FREE_CHECKS: tuple[Callable, ...] = (
    _sk.check_estimator_cloneable,
    _sk.check_estimator_repr,
    _sk.check_no_attributes_set_in_init,
    _sk.check_parameters_default_constructible,
    _sk.check_get_params_invariance,
    _sk.check_set_params,
    _sk.check_do_not_raise_errors_in_init_or_set_params,
    _sk.check_mixin_order,
    _sk.check_valid_tag_types,
    _sk.check_estimator_tags_renamed,
    _sk.check_param_validation,
)

_ROI_FIELDS = ("image", "spacing", "region", "calcifications", "reference", "masks", "meta")


# --------------------------------------------------------------------------- comparison
def assert_outputs_equal(a: Any, b: Any, *, rtol: float = 1e-7, atol: float = 0.0,
                         path: str = "output") -> None:
    """Assert two estimator outputs are equal, NaN equal to NaN.

    Handles what image estimators return: lists of :class:`~skcalc.ROI` (every field is
    compared, including the masks record), 2-D arrays or DataFrames, lists of per-ROI
    tables (mappings of arrays, with their ``feature_names``), and nests of those.
    Floating arrays are compared with ``rtol``/``atol``; integer and boolean arrays exactly
    (by value, so a uint16 image equals its float32 copy).

    Examples
    --------
    >>> import numpy as np
    >>> assert_outputs_equal([{"a": np.array([[np.nan, 1.0]])}], [{"a": np.array([[np.nan, 1.0]])}])
    >>> assert_outputs_equal(np.zeros(2), np.ones(2))
    Traceback (most recent call last):
    ...
    AssertionError: ...
    """
    if hasattr(a, "to_numpy") and hasattr(a, "columns"):
        assert list(a.columns) == list(getattr(b, "columns", [])), f"{path}: columns differ"
        a, b = a.to_numpy(), b.to_numpy()
    if isinstance(a, ROI):
        assert isinstance(b, ROI), f"{path}: ROI vs {type(b).__name__}"
        for f in _ROI_FIELDS:
            assert_outputs_equal(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol,
                                 path=f"{path}.{f}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_, b_ = np.asarray(a), np.asarray(b)
        assert a_.shape == b_.shape, f"{path}: shape {a_.shape} != {b_.shape}"
        if a_.dtype == object or b_.dtype == object:
            for i, (x, y) in enumerate(zip(a_.ravel(), b_.ravel())):
                assert_outputs_equal(x, y, rtol=rtol, atol=atol, path=f"{path}[{i}]")
        elif np.issubdtype(a_.dtype, np.floating) or np.issubdtype(b_.dtype, np.floating):
            assert_allclose(a_, b_, rtol=rtol, atol=atol, equal_nan=True, err_msg=path)
        else:
            assert_array_equal(a_, b_, err_msg=path)
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping), f"{path}: mapping vs {type(b).__name__}"
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_outputs_equal(a[k], b[k], rtol=rtol, atol=atol, path=f"{path}[{k!r}]")
        if hasattr(a, "feature_names") or hasattr(b, "feature_names"):
            assert_outputs_equal(getattr(a, "feature_names", None),
                                 getattr(b, "feature_names", None), path=f"{path}.feature_names")
    elif isinstance(a, CalcificationMasks):
        assert isinstance(b, CalcificationMasks), f"{path}: masks vs {type(b).__name__}"
        for f in ("foreground", "spacing", "band_width", "scales", "merge_index"):
            assert_outputs_equal(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol,
                                 path=f"{path}.{f}")
    elif dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
        for f in dataclasses.fields(a):
            assert_outputs_equal(getattr(a, f.name), getattr(b, f.name), rtol=rtol, atol=atol,
                                 path=f"{path}.{f.name}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)), f"{path}: sequence vs {type(b).__name__}"
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_outputs_equal(x, y, rtol=rtol, atol=atol, path=f"{path}[{i}]")
    elif isinstance(a, (float, np.floating)) and isinstance(b, (float, int, np.number)):
        if not (np.isnan(a) and np.isnan(b)):
            assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _take(out: Any, idx: Sequence[int]) -> Any:
    """Rows ``idx`` of an output (list of ROIs/tables, array or DataFrame)."""
    if hasattr(out, "iloc"):
        return out.iloc[list(idx)]
    if isinstance(out, np.ndarray):
        return out[np.asarray(idx)]
    return [out[i] for i in idx]


def _n_outputs(out: Any) -> int:
    return out.shape[0] if hasattr(out, "shape") else len(out)


def _fit_transform(estimator, rois):
    estimator.fit(rois)
    return estimator.transform(rois)


# --------------------------------------------------------------------------- image checks
def check_image_fit_returns_self(name: str, estimator, rois: list[ROI]) -> None:
    """``fit`` returns the estimator itself."""
    est = clone(estimator)
    assert est.fit(rois) is est, f"{name}.fit does not return self"


def check_image_fit_idempotent(name: str, estimator, rois: list[ROI]) -> None:
    """Fitting twice, and transforming twice, gives the same output (one per ROI)."""
    est = clone(estimator)
    first = _fit_transform(est, rois)
    assert _n_outputs(first) == len(rois), f"{name}: {_n_outputs(first)} outputs for {len(rois)}"
    again = est.transform(rois)
    refit = _fit_transform(est, rois)
    assert_outputs_equal(first, again, path=f"{name} transform twice")
    assert_outputs_equal(first, refit, path=f"{name} refit")


def check_image_clone_pickle_roundtrip(name: str, estimator, rois: list[ROI]) -> None:
    """A pickled fitted estimator, and a refitted clone, give identical output."""
    est = clone(estimator)
    out = _fit_transform(est, rois)
    restored = pickle.loads(pickle.dumps(est))
    assert_outputs_equal(out, restored.transform(rois), path=f"{name} after pickle")
    assert_outputs_equal(out, _fit_transform(clone(est), rois), path=f"{name} clone refit")


def check_image_order_invariance(name: str, estimator, rois: list[ROI]) -> None:
    """Permuting the ROI list permutes the output the same way."""
    est = clone(estimator)
    out = _fit_transform(est, rois)
    perm = list(range(len(rois)))[::-1]
    if len(perm) > 2:  # a reversal leaves the middle one in place: rotate as well
        perm = perm[1:] + perm[:1]
    permuted = est.transform([rois[i] for i in perm])
    assert_outputs_equal(_take(out, perm), permuted, path=f"{name} permuted")


def check_image_list_vs_tuple(name: str, estimator, rois: list[ROI]) -> None:
    """A tuple of ROIs is accepted and gives the output of the list."""
    out = _fit_transform(clone(estimator), list(rois))
    out_t = _fit_transform(clone(estimator), tuple(rois))
    assert_outputs_equal(out, out_t, path=f"{name} tuple input")


def check_image_no_input_mutation(name: str, estimator, rois: list[ROI]) -> None:
    """fit and transform leave the input list and every ROI field unchanged."""
    snapshot = [copy.deepcopy(r) for r in rois]
    ids = [id(r) for r in rois]
    est = clone(estimator)
    _fit_transform(est, rois)
    assert [id(r) for r in rois] == ids, f"{name} modified the input list"
    assert_outputs_equal(snapshot, list(rois), rtol=0, path=f"{name} input after fit/transform")


def _few_object_rois(rois: list[ROI]) -> list[ROI]:
    """Copies of the first ROI holding 0 and 1 calcification (before any later stage)."""
    from scipy import ndimage as ndi

    base = rois[0]
    src = base.calcifications
    if src is None and base.reference is not None:
        src = ndi.label(base.reference)[0]
    if src is None:
        src = np.zeros(base.shape, np.int32)
    one = (src == (np.min(src[src > 0]) if (src > 0).any() else 0)) & (src > 0)
    out = []
    for k, keep in enumerate((np.zeros_like(one), one)):
        meta = {**base.meta, "roi_id": f"{base.roi_id}-{k}obj"}
        out.append(base.replace(
            calcifications=keep.astype(np.int32),
            reference=keep.copy(),
            masks=None,
            meta=meta,
        ))
    return out


def check_image_few_objects(name: str, estimator, rois: list[ROI]) -> None:
    """ROIs with 0 and 1 calcification get one well-defined output each, never a crash.

    For estimators that consume ``calcifications``/``masks`` the ROIs are re-prepared by
    the upstream stages (see ``make_rois_for``); warnings are allowed.
    """
    import warnings

    from ._instance_generator import _prepare_rois_for

    few = _prepare_rois_for(estimator, _few_object_rois(rois))
    est = clone(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(rois)
        out = est.transform(few)
    assert _n_outputs(out) == 2, f"{name}: {_n_outputs(out)} outputs for 2 ROIs"
    if isinstance(out, np.ndarray):
        assert out.ndim == 2 and not np.isinf(out).any(), f"{name}: bad output {out!r}"


def check_image_dtype_invariance(name: str, estimator, rois: list[ROI]) -> None:
    """uint16 images and their float32 copies give the same output (integer images only)."""
    if not all(np.issubdtype(r.image.dtype, np.integer) for r in rois):
        return
    as_float = [r.replace(image=r.image.astype(np.float32)) for r in rois]
    est = clone(estimator)
    out = _fit_transform(est, rois)
    out_f = est.transform(as_float)
    assert_outputs_equal(out, out_f, rtol=1e-5, atol=1e-8, path=f"{name} float32 input")


IMAGE_CHECKS: tuple[Callable, ...] = (
    check_image_fit_returns_self,
    check_image_fit_idempotent,
    check_image_clone_pickle_roundtrip,
    check_image_order_invariance,
    check_image_list_vs_tuple,
    check_image_no_input_mutation,
    check_image_few_objects,
    check_image_dtype_invariance,
)


def _data_free(check: Callable) -> Callable:
    @functools.wraps(check)
    def wrapped(name, estimator, rois=None):
        return check(name, estimator)

    wrapped.needs_rois = False
    return wrapped


def yield_image_checks(estimator) -> Iterator[Callable]:
    """Checks for an image estimator, each ``check(name, estimator, rois)``.

    The data-free scikit-learn checks ignore ``rois`` (attribute ``needs_rois = False``).
    """
    for check in DATA_FREE_CHECKS:
        yield _data_free(check)
    yield from IMAGE_CHECKS


def _check_name(check: Callable) -> str:
    return getattr(check, "__name__", None) or check.func.__name__


def _estimator_id(estimator) -> str:
    return re.sub(r"\s+", "", repr(estimator))


def parametrize_with_image_checks(
    estimators: Sequence,
    *,
    rois_factory: Callable[[Any], list[ROI]] | None = None,
    expected_failed_checks: Callable[[Any], dict[str, str]] | None = None,
    xfail_strict: bool | None = None,
):
    """pytest ``parametrize`` decorator over (estimator, check) pairs, like scikit-learn's.

    The test receives ``estimator`` and a ``check`` to call as ``check(estimator)``.

    Parameters
    ----------
    estimators : sequence of estimator instances
    rois_factory : callable, optional
        ``rois_factory(estimator) -> list of ROI`` prepared for that estimator, called when
        a check runs (not at collection). Default:
        :func:`skcalc.testing._instance_generator.make_rois_for`.
    expected_failed_checks : callable, optional
        ``estimator -> {check_name: reason}``; those checks are marked ``xfail``.
    xfail_strict : bool, optional
        Passed to ``pytest.mark.xfail(strict=...)``.

    Returns
    -------
    decorator
    """
    import pytest

    if rois_factory is None:
        from ._instance_generator import make_rois_for as rois_factory

    def bind(check, name):
        def run(estimator):
            rois = rois_factory(estimator) if getattr(check, "needs_rois", True) else None
            return check(name, estimator, rois)

        run.__name__ = _check_name(check)
        return run

    params = []
    for est in estimators:
        name = type(est).__name__
        xfails = expected_failed_checks(est) if expected_failed_checks else {}
        for check in yield_image_checks(est):
            check_name = _check_name(check)
            marks = ()
            if check_name in xfails:
                marks = (pytest.mark.xfail(reason=xfails[check_name], strict=xfail_strict),)
            params.append(pytest.param(est, bind(check, name), marks=marks,
                                       id=f"{_estimator_id(est)}-{check_name}"))
    return pytest.mark.parametrize("estimator, check", params)
