"""SMOTE + Edited Nearest Neighbours that survives the small folds of a nested grid search."""

from __future__ import annotations

import numbers
import warnings
from collections import Counter

import numpy as np
from imblearn.combine import SMOTEENN
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import EditedNearestNeighbours
from sklearn.utils._param_validation import Interval, StrOptions

from .exceptions import SkcalcWarning

__all__ = ["SafeSMOTEENN"]


class SafeSMOTEENN(SMOTEENN):
    """SMOTE oversampling then ENN cleaning, adapted to tiny minority classes.

    The paper resamples with SMOTE + ENN before LightGBM. imbalanced-learn's
    :class:`~imblearn.combine.SMOTEENN` fails on the small folds of a nested grid search:
    SMOTE needs more minority samples than ``k_neighbors``, and its default ENN
    (``sampling_strategy="all"``) can delete a whole class, after which the classifier sees
    one class. This sampler

    - lowers SMOTE's ``k_neighbors`` to ``n_minority - 1`` when the minority class is small,
    - returns the data unchanged (with a :class:`~skcalc.SkcalcWarning`) when the minority
      class has fewer than 2 samples,
    - cleans with ENN on ``enn_sampling_strategy`` (default ``"majority"``: only majority
      samples are edited away, so the minority class is never removed), and
    - falls back to the SMOTE output if ENN would still leave fewer than 2 samples of a class.

    Parameters
    ----------
    sampling_strategy : float, str or dict, default="auto"
        SMOTE's sampling strategy.
    random_state : int, RandomState or None, default=None
        Seed of SMOTE.
    k_neighbors : int, default=5
        SMOTE neighbours (upper bound; lowered on small classes).
    enn_n_neighbors : int, default=3
        ENN neighbours.
    enn_sampling_strategy : {"majority", "not minority", "not majority", "all"}, default="majority"
        Which classes ENN may edit.
    smote, enn : None
        Kept for compatibility with :class:`~imblearn.combine.SMOTEENN`; must be ``None``.
    n_jobs : int, default=None
        Parallel jobs of the neighbour searches.

    Examples
    --------
    >>> import numpy as np
    >>> from skcalc.resampling import SafeSMOTEENN
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(23, 2)); y = np.r_[np.zeros(20, int), np.ones(3, int)]
    >>> Xr, yr = SafeSMOTEENN(random_state=0).fit_resample(X, y)
    >>> int((yr == 1).sum()) > 3
    True
    """

    _parameter_constraints: dict = {
        **SMOTEENN._parameter_constraints,
        "smote": [None],
        "enn": [None],
        "k_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "enn_n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "enn_sampling_strategy": [
            StrOptions({"majority", "not minority", "not majority", "all"})
        ],
    }

    def __init__(
        self,
        *,
        sampling_strategy="auto",
        random_state=None,
        k_neighbors=5,
        enn_n_neighbors=3,
        enn_sampling_strategy="majority",
        smote=None,
        enn=None,
        n_jobs=None,
    ):
        super().__init__(
            sampling_strategy=sampling_strategy,
            random_state=random_state,
            smote=smote,
            enn=enn,
            n_jobs=n_jobs,
        )
        self.k_neighbors = k_neighbors
        self.enn_n_neighbors = enn_n_neighbors
        self.enn_sampling_strategy = enn_sampling_strategy

    def _fit_resample(self, X, y):
        self.sampling_strategy_ = self.sampling_strategy
        counts = Counter(np.asarray(y).tolist())
        n_min = min(counts.values())
        if len(counts) < 2 or n_min < 2:
            warnings.warn(
                f"SafeSMOTEENN: class counts {dict(counts)} are too small to resample; "
                "the fold is used as is",
                SkcalcWarning,
                stacklevel=2,
            )
            self.smote_, self.enn_ = None, None
            return X, y
        self.smote_ = SMOTE(
            sampling_strategy=self.sampling_strategy,
            k_neighbors=min(self.k_neighbors, n_min - 1),
            random_state=self.random_state,
        )
        X_s, y_s = self.smote_.fit_resample(X, y)
        self.enn_ = EditedNearestNeighbours(
            sampling_strategy=self.enn_sampling_strategy,
            n_neighbors=min(self.enn_n_neighbors, len(y_s) - 1),
            n_jobs=self.n_jobs,
        )
        X_r, y_r = self.enn_.fit_resample(X_s, y_s)
        after = Counter(np.asarray(y_r).tolist())
        if len(after) < len(counts) or min(after.values()) < 2:
            return X_s, y_s
        return X_r, y_r
