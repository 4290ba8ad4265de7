"""Write the crafted model files of ``tests/data`` (run from the repository root).

Each file is a small, otherwise valid skcalc model file carrying one attack on the loader:

* ``attack_memory_folder.skops``: a fitted segmenter whose ``memory`` names a cache folder
  (``skcalc-planted-cache``, relative to where ``skcalc predict`` runs) that someone else can
  fill with joblib pickles.
* ``attack_regressor_path.skops``: an unfitted segmenter whose ``regressor`` names a weights
  file; ``attack_regressor_path_fitted.skops``: the same on a fitted segmenter.
* ``attack_booster_reduce.skops``: a LightGBM classifier whose booster is stored as the
  constructor call ``lightgbm.basic.Booster(None, None, "/etc/hostname")``.
* ``attack_booster_state.skops``: a booster whose state carries an extra attribute.
* ``attack_lightgbm_params.skops``: a LightGBM classifier with ``output_model="/tmp/..."``.
* ``attack_trusted_reduce.skops``: a trusted skcalc type stored as a constructor call.
* ``attack_not_estimator.skops``: a model file whose model is a plain string.

Usage: ``python tests/data/make_attack_models.py``
"""

import io
import json
import os
import zipfile

import numpy as np
from lightgbm import LGBMClassifier

from skcalc import ROI
from skcalc.classification import ThresholdedClassifier
from skcalc.persistence import save_model
from skcalc.segmentation import HDoGRegSegmenter

HERE = os.path.dirname(os.path.abspath(__file__))


def edit(name, func):
    path = os.path.join(HERE, name)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(files["schema.json"])
    func(schema)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, data in files.items():
            zf.writestr(n, json.dumps(schema) if n == "schema.json" else data)
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def nodes(node):
    if isinstance(node, dict):
        if "__loader__" in node:
            yield node
        for v in node.values():
            yield from nodes(v)
    elif isinstance(node, list):
        for v in node:
            yield from nodes(v)


def json_node(value):
    return {"__class__": type(value).__name__ if value is not None else "NoneType",
            "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}  # fmt: skip


def small_lgbm(**params):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    return LGBMClassifier(n_estimators=3, num_leaves=3, min_child_samples=2, verbose=-1,
                          **params).fit(X, y)  # fmt: skip


def main():
    out = lambda name: os.path.join(HERE, name)  # noqa: E731
    yy, xx = np.mgrid[:32, :32]
    img = 0.3 + 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / (2 * 1.5**2))
    roi = ROI(img, meta={"roi_id": "a"})

    seg = HDoGRegSegmenter(regressor=None, memory="skcalc-planted-cache").fit([roi])
    save_model(seg, out("attack_memory_folder.skops"))

    save_model(HDoGRegSegmenter(regressor="/etc/hostname"), out("attack_regressor_path.skops"))

    seg = HDoGRegSegmenter(regressor=None).fit([roi])
    seg.regressor = "planted-weights.pt"
    save_model(seg, out("attack_regressor_path_fitted.skops"))

    save_model(small_lgbm(), out("attack_booster_reduce.skops"))

    def booster_as_call(schema):
        for node in nodes(schema):
            if node.get("__class__") == "Booster":
                node_id = node.get("__id__")
                node.clear()
                node.update({
                    "__class__": "Booster", "__module__": "lightgbm.basic",
                    "__loader__": "ConstructorFromReduceNode", "__id__": node_id,
                    "content": {"__class__": "tuple", "__module__": "builtins",
                                "__loader__": "TupleNode",
                                "content": [json_node(None), json_node(None),
                                            json_node("/etc/hostname")]},
                })  # fmt: skip
                return

    edit("attack_booster_reduce.skops", booster_as_call)

    save_model(small_lgbm(), out("attack_booster_state.skops"))

    def booster_extra_state(schema):
        for node in nodes(schema):
            if node.get("__class__") == "Booster":
                node["content"]["content"]["planted"] = json_node("/etc/hostname")
                node["content"]["content"]["pandas_categorical"] = json_node(["planted"])
                return

    edit("attack_booster_state.skops", booster_extra_state)

    clf = small_lgbm()
    clf.set_params(output_model="/tmp/skcalc-planted-model.txt")
    save_model(clf, out("attack_lightgbm_params.skops"))

    save_model(ThresholdedClassifier(small_lgbm(), threshold=0.4),
               out("attack_trusted_reduce.skops"))  # fmt: skip

    def thresholded_as_call(schema):
        for node in nodes(schema):
            if node.get("__class__") == "ThresholdedClassifier":
                node_id = node.get("__id__")
                node.clear()
                node.update({
                    "__class__": "ThresholdedClassifier",
                    "__module__": "skcalc.classification",
                    "__loader__": "ConstructorFromReduceNode", "__id__": node_id,
                    "content": {"__class__": "tuple", "__module__": "builtins",
                                "__loader__": "TupleNode", "content": [json_node(None)]},
                })  # fmt: skip
                return

    edit("attack_trusted_reduce.skops", thresholded_as_call)

    save_model("just a string", out("attack_not_estimator.skops"))


if __name__ == "__main__":
    main()
