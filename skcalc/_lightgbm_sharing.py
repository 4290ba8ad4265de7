"""LightGBM boosting shared between the fits of a grid search (exact).

Used by :class:`skcalc.ThresholdedClassifier` when its fits are memoised; see the notes below.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ._fitcache import FIT_CACHE, data_key
from .utils._lru import LRUCache

__all__ = ["fit_classifier"]


# ------------------------------------------------ LightGBM boosting shared across n_estimators
# A grid over ``n_estimators`` fits the same LightGBM setting on the same data several times
# with different numbers of trees. Gradient boosting is sequential and, with one thread and
# an integer seed, deterministic: the first 100 trees of a 200-tree model are the 100-tree
# model (the bagging and column-sampling generators advance the same way, whatever the
# total). Continuing a *finished* model (``init_model``) is not the same (its generators
# restart); keeping the training Booster alive and calling ``update`` again is. So, for the
# verified cases only, ``LGBMClassifier.fit`` (LightGBM's own code: validation, label
# encoding, attributes) runs while ``lightgbm.sklearn.train`` is replaced by
# :func:`_train_sharing`, which
#
# * builds LightGBM's ``Dataset`` once per training data and Dataset-relevant parameters
#   (the parameters in ``_BOOSTER_ONLY`` do not change its binning), instead of once per fit;
# * keeps the training Booster of each (data, parameters but the number of trees) and boosts
#   it further when more trees are asked; a fit of N trees returns a Booster loaded from the
#   kept one's model text cut at its N-th boosting round, the way ``lightgbm.train`` returns
#   one loaded from its own model text. The text is LightGBM's for a fresh N-tree fit
#   character for character (tested), once the parameter line ``num_iterations`` says N.
#
# Everything else (other LightGBM versions, parameters, data types, fit arguments, other
# threads) goes through the real ``lightgbm.train`` unchanged.

#: LightGBM minor versions whose ``train``/``LGBMModel.fit`` were read and tested for this.
_VERIFIED_LIGHTGBM = ("4.7",)

#: Parameters (as ``LGBMModel._process_params`` passes them) under which sharing was verified.
_SHAREABLE_PARAMS = frozenset({
    "boosting_type", "colsample_bytree", "learning_rate", "max_depth", "metric",
    "min_child_samples", "min_child_weight", "min_split_gain", "num_leaves", "num_threads",
    "objective", "random_state", "reg_alpha", "reg_lambda", "subsample",
    "subsample_for_bin", "subsample_freq", "verbose",
})

#: Tree-learning parameters that do not enter the Dataset's construction (LightGBM's own
#: check, ``LGBM_DatasetUpdateParamChecking``, accepts changing them on a built Dataset).
_BOOSTER_ONLY = frozenset({
    "learning_rate", "max_depth", "min_split_gain", "num_iterations", "num_leaves",
    "reg_alpha", "reg_lambda",
})

#: Built Datasets, by training data and Dataset-relevant parameters (one per fold and K in
#: the paper grid: a few hundred KB each at the demo's size).
_DATASETS = LRUCache(max_items=32)

#: Training Boosters kept for more rounds, bounded in number and in estimated bytes. A kept
#: Booster's size is dominated by its histogram pool, ``num_leaves`` x (total bins of the
#: Dataset) x 16 bytes (measured: 4.1 MB for 15 leaves at the demo's 250 x 185 data with
#: 15,725 bins, 11.3 MB at 1000 x 185 with 47,175 bins). The paper grid's candidate order
#: puts 80 distinct LightGBM fits between the 100- and the 200-tree fit of one setting:
#: about 230 MB at the demo's size. When they do not fit in the budget, the oldest are
#: dropped and the larger fits train again from the start (same result, no time saved).
#: An evicted Booster is freed with its last reference (nothing else refers to it).
_BOOSTERS = LRUCache(max_items=96, max_weight=512 * 2**20)

FIT_CACHE.dependents += [_DATASETS, _BOOSTERS]  # FIT_CACHE.clear() frees them too

_SHARE_LOCK = threading.RLock()  # the stores and the kept Boosters (``update`` mutates them)
_PATCH_LOCK = threading.Lock()  # installing/removing the replacement of lightgbm's train
_patch = {"users": 0, "original": None}
_local = threading.local()  # this thread's depth inside _shared_boosting()

#: Attributes that ``Booster(params, train_set)`` sets and loading a model text does not.
_TRAINING_ATTRIBUTES = (
    "_Booster__higher_better_inner_eval", "_Booster__init_predictor",
    "_Booster__name_inner_eval", "_Booster__need_reload_eval_info", "_Booster__num_dataset",
    "_Booster__num_inner_eval", "name_valid_sets", "train_set_version",
)

#: ``lightgbm.train``'s arguments as ``LGBMModel.fit`` passes them (all by keyword).
_TRAIN_KWARGS = frozenset({
    "params", "train_set", "num_boost_round", "valid_sets", "valid_names", "feval",
    "init_model", "callbacks",
})


class _KeptBooster:
    """A training Booster and, after each ``update`` call, its number of boosting rounds.

    ``lightgbm.train`` calls ``update`` ``num_boost_round`` times whatever it returns; a
    call that finds no split adds no tree, so a fit of N rounds is the model after N calls,
    which may hold fewer than N trees.
    """

    def __init__(self, booster, n_iterations_param: int) -> None:
        self.booster = booster
        self.n_iterations_param = n_iterations_param
        self.rounds_after: list[int] = [0]  # rounds_after[k]: trees after k update calls

    def grow(self, n_calls: int) -> None:
        while len(self.rounds_after) <= n_calls:
            self.booster.update()
            self.rounds_after.append(self.booster.current_iteration())
            FIT_CACHE.computed[("LightGBM", "update")] += 1


def _lightgbm_verified() -> bool:
    import lightgbm

    return ".".join(lightgbm.__version__.split(".")[:2]) in _VERIFIED_LIGHTGBM


def fit_classifier(estimator, X, y, fit_params: dict, *, share: bool):
    """``estimator.fit(X, y, **fit_params)``, sharing LightGBM's boosting when ``share``
    and the case is one verified to give the same model (see above)."""
    if share and not fit_params and isinstance(X, np.ndarray) and X.ndim == 2:
        from lightgbm import LGBMClassifier

        if type(estimator) is LGBMClassifier and _lightgbm_verified():
            with _shared_boosting():
                return estimator.fit(X, y)
    return estimator.fit(X, y, **fit_params)


@contextmanager
def _shared_boosting() -> Iterator[None]:
    """Within this thread, ``LGBMClassifier.fit`` trains through :func:`_train_sharing`.

    The replacement of ``lightgbm.sklearn.train`` is installed while any thread is inside;
    for every other thread it passes calls to the real ``train``.
    """
    import lightgbm.sklearn as lgb_sklearn

    with _PATCH_LOCK:
        if _patch["users"] == 0:
            _patch["original"] = lgb_sklearn.train
            lgb_sklearn.train = _train_sharing
        _patch["users"] += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _PATCH_LOCK:
            _patch["users"] -= 1
            if _patch["users"] == 0 and lgb_sklearn.train is _train_sharing:
                lgb_sklearn.train = _patch["original"]


def _train_sharing(*args, **kwargs):
    """``lightgbm.train`` as ``LGBMModel.fit`` calls it, with the Dataset and the boosting
    shared between fits (see above); any other call goes to the real ``train``."""
    original = _patch["original"]
    if getattr(_local, "depth", 0) <= 0 or args or not _shareable_call(kwargs):
        return original(*args, **kwargs)
    with _SHARE_LOCK:
        return _train_shared(**kwargs)


def _shareable_call(kw: dict) -> bool:
    from lightgbm import Dataset
    from lightgbm.callback import _RecordEvaluationCallback

    if set(kw) != _TRAIN_KWARGS:
        return False
    callbacks = kw["callbacks"] or []
    if (
        kw["valid_sets"] or kw["valid_names"] is not None or kw["feval"]
        or kw["init_model"] is not None
        or len(callbacks) != 1 or type(callbacks[0]) is not _RecordEvaluationCallback
    ):
        return False
    n = kw["num_boost_round"]
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        return False
    params = kw["params"]
    if not set(params) <= _SHAREABLE_PARAMS or not (
        params.get("boosting_type") == "gbdt"
        and params.get("objective") == "binary"
        and params.get("num_threads") == 1
        and isinstance(params.get("random_state"), (int, np.integer))
        and not isinstance(params.get("random_state"), bool)
    ):
        return False
    ds = kw["train_set"]
    return (
        type(ds) is Dataset
        and ds._handle is None  # not built yet: LightGBM builds it in train()
        and isinstance(ds.data, np.ndarray) and ds.data.ndim == 2
        and ds.data.dtype.kind == "f"
        and isinstance(ds.label, np.ndarray)
        and ds.weight is None and ds.group is None and ds.init_score is None
        and ds.reference is None and ds.used_indices is None and ds._predictor is None
        and isinstance(ds.feature_name, str) and ds.feature_name == "auto"
        and isinstance(ds.categorical_feature, str) and ds.categorical_feature == "auto"
    )


def _params_repr(params: dict, leave_out: frozenset) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items() if k not in leave_out))


def _train_shared(*, params, train_set, num_boost_round, callbacks, **_):
    from lightgbm import Booster
    from lightgbm.callback import CallbackEnv
    from lightgbm.engine import _choose_num_iterations

    # lightgbm.engine.train's preparation of the parameters (objective and early stopping
    # are plain here: checked by _shareable_call).
    params = _choose_num_iterations(num_boost_round_kwarg=num_boost_round,
                                    params=copy.deepcopy(params))
    n = params["num_iterations"]
    data = data_key(train_set.data, train_set.label)
    ds_key = (data, _params_repr(params, _BOOSTER_ONLY))
    found, ds = _DATASETS.get(ds_key)
    if not found:
        ds = train_set
    booster_key = (data, _params_repr(params, frozenset({"num_iterations"})))
    found_booster, kept = _BOOSTERS.get(booster_key)
    if not found_booster:
        # As lightgbm.engine.train: the Dataset is built (or, already built, checked by
        # LightGBM against these parameters) when the Booster is created.
        ds._update_params(params)._set_predictor(None)
        try:
            booster = Booster(params=params, train_set=ds)
        finally:
            ds._reverse_update_params()
        kept = _KeptBooster(booster, n)
        n_bins = sum(ds.feature_num_bin(i) for i in range(ds.num_feature()))
        _BOOSTERS.put(booster_key, kept, weight=16 * n_bins * int(params["num_leaves"])
                      + 64 * ds.num_data())
        FIT_CACHE.computed[("LightGBM", "Booster")] += 1
        if not found:
            _DATASETS.put(ds_key, ds)
            FIT_CACHE.computed[("LightGBM", "Dataset")] += 1
    kept.grow(n)
    rounds = kept.rounds_after[n]
    line = f"\n[num_iterations: {kept.n_iterations_param}]\n"
    text = kept.booster.model_to_string(num_iteration=rounds) if rounds else ""
    if text.count(line) != 1:
        # No tree at all (LightGBM's text would then hold every round), or a model text
        # unlike the verified ones: leave it to LightGBM itself.
        return _patch["original"](params=params, train_set=train_set,
                                  num_boost_round=num_boost_round, valid_sets=[],
                                  valid_names=None, feval=[], init_model=None,
                                  callbacks=callbacks)
    # The kept Booster was created for its first request's number of rounds.
    text = text.replace(line, f"\n[num_iterations: {n}]\n")
    out = Booster(model_str=text)
    # The attributes lightgbm.engine.train leaves on its Booster: the parameters it was
    # created with (Booster.__init__ adds the Dataset's), best_iteration and best_score.
    out.params = {**params, **ds.get_params()}
    out.best_iteration = 0
    out.best_score = defaultdict(OrderedDict)
    # ... and the bookkeeping its training Booster had (read by nothing once the data is
    # freed, but pickled with the model): taken from the kept training Booster.
    for name in _TRAINING_ATTRIBUTES:
        setattr(out, name, copy.copy(getattr(kept.booster, name)))
    # In the training Booster's order, so that the fitted model pickles to the same bytes.
    order = [k for k in vars(kept.booster) if k in vars(out)]
    order += [k for k in vars(out) if k not in order]
    out.__dict__ = {k: out.__dict__[k] for k in order}
    # The record_evaluation callback clears its dict at the first round and records
    # nothing without validation sets.
    callbacks[0](CallbackEnv(model=out, params=params, iteration=0, begin_iteration=0,
                             end_iteration=n, evaluation_result_list=[]))
    return out
