"""SMOTE + Edited Nearest Neighbours that survives the small folds of a nested grid search."""

from __future__ import annotations

import numbers
import warnings
from collections import Counter

import numpy as np
from imblearn.combine import SMOTEENN
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import EditedNearestNeighbours
from imblearn.utils import check_target_type
from sklearn.base import clone
from sklearn.utils import check_X_y
from sklearn.utils._param_validation import HasMethods

from ._fitcache import memoised
from .exceptions import SkcalcWarning
from .utils._base import CachedParamNamesMixin
from .utils._parallel import single_threaded

__all__ = ["SafeSMOTEENN"]


class SafeSMOTEENN(CachedParamNamesMixin, SMOTEENN):
    """SMOTE oversampling then ENN cleaning, adapted to tiny minority classes.

    The paper resamples with SMOTE + ENN before LightGBM. This is imbalanced-learn's
    :class:`~imblearn.combine.SMOTEENN` (same parameters: configure SMOTE and ENN by passing
    ``smote=`` and ``enn=`` objects) with three safety changes for the small folds of a
    nested grid search, where SMOTE needs more minority samples than ``k_neighbors`` and
    imbalanced-learn's default ENN (``sampling_strategy="all"``) can delete a whole class:

    - the default ENN is ``EditedNearestNeighbours(sampling_strategy="majority")``: only
      majority samples are edited away, so the minority class is never removed (pass
      ``enn=EditedNearestNeighbours(sampling_strategy="all")`` for imbalanced-learn's);
    - integer ``k_neighbors`` of SMOTE and ``n_neighbors`` of ENN are lowered to what the
      fold allows (``n_minority - 1``, ``n_samples - 1``); with fewer than 2 minority
      samples the data are returned unchanged, with a :class:`~skcalc.SkcalcWarning`;
    - if ENN would still leave fewer than 2 samples of a class, the SMOTE output is used.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        SMOTE's sampling strategy when ``smote`` is None.
    random_state : int, RandomState instance or None, default=None
        Seed of the default SMOTE.
    smote : imblearn.over_sampling.SMOTE or None, default=None
        The SMOTE to use (cloned); None means ``SMOTE(sampling_strategy=sampling_strategy,
        random_state=random_state)``.
    enn : imblearn.under_sampling.EditedNearestNeighbours or None, default=None
        The ENN to use (cloned); None means
        ``EditedNearestNeighbours(sampling_strategy="majority", n_jobs=n_jobs)``.
    n_jobs : int, default=None
        Parallel jobs of the default ENN's neighbour search.
    memory : None or object with a ``location``, default=None
        When set (e.g. :class:`skcalc.utils.InProcessMemory`), the resampled data are
        memoised in this process, keyed on the content of ``X`` and ``y`` and on all the
        parameters: the candidates of a grid search that differ only downstream (the
        classifier's settings, the threshold) resample each fold once. Only deterministic
        resampling (integer random states) is memoised (see :mod:`skcalc._fitcache`).

    Attributes
    ----------
    smote_ : SMOTE or None
        The SMOTE used (None when the fold was too small to resample).
    enn_ : EditedNearestNeighbours or None
        The ENN used.
    sampling_strategy_ : float, str, dict or callable
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from imblearn.over_sampling import SMOTE
    >>> from skcalc.resampling import SafeSMOTEENN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(23, 2)); y = np.r_[np.zeros(20, int), np.ones(3, int)]
    >>> Xr, yr = SafeSMOTEENN(random_state=0).fit_resample(X, y)
    >>> int((yr == 1).sum()) > 3
    True
    >>> sampler = SafeSMOTEENN(smote=SMOTE(k_neighbors=3, random_state=0))
    >>> _ = sampler.fit_resample(X, y)
    >>> sampler.smote_.k_neighbors  # lowered to n_minority - 1
    2
    """

    _parameter_constraints: dict = {
        **SMOTEENN._parameter_constraints,
        "memory": [None, HasMethods(["cache"])],
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        random_state=None,
        smote=None,
        enn=None,
        n_jobs=None,
        memory=None,
    ):
        super().__init__(
            sampling_strategy=sampling_strategy,
            random_state=random_state,
            smote=smote,
            enn=enn,
            n_jobs=n_jobs,
        )
        self.memory = memory

    def _validate_estimator(self):
        """imbalanced-learn's composition, with the ``"majority"`` ENN as the default."""
        if self.smote is not None:
            self.smote_ = clone(self.smote)
        else:
            self.smote_ = SMOTE(
                sampling_strategy=self.sampling_strategy, random_state=self.random_state
            )
        if self.enn is not None:
            self.enn_ = clone(self.enn)
        else:
            self.enn_ = EditedNearestNeighbours(sampling_strategy="majority", n_jobs=self.n_jobs)

    def _fit_resample(self, X, y):
        y = check_target_type(y)
        X, y = check_X_y(X, y, accept_sparse=["csr", "csc"])
        self.sampling_strategy_ = self.sampling_strategy
        X_r, y_r, self.smote_, self.enn_ = memoised(
            self, "fit_resample", (X, y), lambda: self._resample(X, y)
        )
        # The memoised arrays are shared: hand out copies.
        return X_r.copy(), y_r.copy()

    def _resample(self, X, y):
        counts = Counter(np.asarray(y).tolist())
        n_min = min(counts.values())
        if len(counts) < 2 or n_min < 2:
            warnings.warn(
                f"SafeSMOTEENN: class counts {dict(counts)} are too small to resample; "
                "the fold is used as is",
                SkcalcWarning,
                stacklevel=4,
            )
            return X, y, None, None
        self._validate_estimator()
        smote, enn = self.smote_, self.enn_
        k = smote.k_neighbors
        if isinstance(k, numbers.Integral) and k > n_min - 1:
            smote.set_params(k_neighbors=n_min - 1)
        k = enn.n_neighbors
        # One fold's neighbour searches: BLAS/OpenMP threads would only compete with the
        # other work on the machine (same results on any number of threads).
        with single_threaded():
            X_s, y_s = smote.fit_resample(X, y)
            if isinstance(k, numbers.Integral) and k > len(y_s) - 1:
                enn.set_params(n_neighbors=len(y_s) - 1)
            X_r, y_r = enn.fit_resample(X_s, y_s)
        after = Counter(np.asarray(y_r).tolist())
        if len(after) < len(counts) or min(after.values()) < 2:
            return X_s, y_s, smote, enn
        return X_r, y_r, smote, enn
