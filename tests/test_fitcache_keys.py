"""Keys of the tail's memo: exact (equal only for equal arguments) and cheap on repeat."""

import numpy as np
from joblib import hash as joblib_hash
from sklearn.utils import Bunch

from skcalc._fitcache import _args_key


def test_args_key_by_repr_for_plain_values_else_joblib():
    routed = ((), {"weight": None, "params": Bunch(fit={}, fit_transform={})})
    assert _args_key(routed) == _args_key(((), {"weight": None,
                                                "params": {"fit": {}, "fit_transform": {}}}))
    assert _args_key(routed).startswith("repr:")
    assert _args_key({"a": 1}) != _args_key({"a": True}) != _args_key({"a": 1.0})
    assert _args_key({"a": [1, 2]}) != _args_key({"a": (1, 2)})
    # arrays, numpy scalars and dicts that print something else: joblib's content hash
    for value in ({"w": np.arange(3)}, {"w": np.float64(1.0)}, {1: "non-str key"}):
        assert _args_key(value) == joblib_hash(value)
    assert _args_key(Quiet(a=1)) != _args_key(Quiet(a=2))


class Quiet(dict):
    """A dict whose repr hides its content: must not be keyed by repr."""

    def __repr__(self):
        return "{}"
