"""The paper's deep-learning baselines as scikit-learn estimators on lists of ROIs.

- :class:`DeepROIClassifier`: a ResNet-50 or VGG-16 fine-tuned with class-weighted
  cross-entropy (the paper's "fine-tuned ResNet-50 / VGG-16");
- :class:`DeepFeatureExtractor`: the network's 2048 (ResNet-50) or 4096 (VGG-16) features,
  from ImageNet weights as they are (``fine_tune=False``: "pre-trained, not fine-tuned")
  or after the same fine-tuning (``fine_tune=True``), for a LightGBM classifier.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ..exceptions import SkcalcWarning
from ..roi import as_roi_list, exam_groups
from ._models import (
    ARCHITECTURES,
    N_FEATURES,
    build_network,
    network_features,
    network_from_arrays,
    network_to_arrays,
)
from ._preprocess import preprocess_rois
from ._train import forward_batches, resolve_class_weight, torch_settings, train_network

__all__ = ["DeepFeatureExtractor", "DeepROIClassifier"]


def _exam_groups(rois) -> np.ndarray:
    """Groups of the validation split: ``meta['exam_id']`` of each ROI when all have one,
    else ``meta['patient_id']`` (:func:`skcalc.roi.exam_groups`), else one group
    per ROI, with a warning."""
    groups, _ = exam_groups(rois)
    if groups is not None:
        return groups
    warnings.warn(
        "the ROIs carry no meta 'exam_id' or 'patient_id': the validation split that "
        "selects the epoch treats each ROI as its own exam, so ROIs of one exam can be on "
        "both sides and the validation F1 can be optimistic",
        SkcalcWarning,
        stacklevel=2,
    )
    return np.arange(len(rois)).astype(str).astype(object)


class _DeepROIBase(BaseEstimator):
    """Shared parameters, preprocessing and fine-tuning of the deep estimators."""

    _parameter_constraints: dict = {
        "arch": [StrOptions(set(ARCHITECTURES))],
        "weights": [None, str, os.PathLike],
        "input_size": [Interval(Integral, 8, None, closed="left")],
        "margin_mm": [Interval(Real, 0, None, closed="left")],
        "field_of_view_mm": [Interval(Real, 0, None, closed="neither"), None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "augment": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def _preprocess(self, X):
        rois = as_roi_list(X)
        return rois, preprocess_rois(rois, self.input_size, margin_mm=self.margin_mm,
                                     field_of_view_mm=self.field_of_view_mm)

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _fit_network(self, X, y):
        """Build the network; fine-tune it when ``y`` is given. Sets the fitted attributes."""
        seed = self._seed()
        if y is None:
            # Nothing is learnt from the ROIs: check them, but do not preprocess them.
            as_roi_list(X)
            with torch_settings(self.n_threads):
                self.network_ = build_network(self.arch, self.weights, seed=seed)
            return self
        rois, x = self._preprocess(X)
        with torch_settings(self.n_threads):
            if len(y) != len(rois):
                raise ValueError(f"X has {len(rois)} ROIs but y has {len(y)} labels")
            check_classification_targets(y)
            self.classes_, y_idx = np.unique(np.asarray(y), return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"fine-tuning needs at least 2 classes, y has only {self.classes_.tolist()}"
                )
            weight = (None if isinstance(self.class_weight, str)
                      else resolve_class_weight(self.class_weight, y_idx, self.classes_))
            net = build_network(self.arch, self.weights, num_classes=len(self.classes_),
                                seed=seed)
            # without a validation split the groups are unused: no warning about them
            groups = (_exam_groups(rois) if self.validation_fraction is not None
                      else np.arange(len(rois)))
            info = train_network(
                net, x, y_idx, groups,
                n_classes=len(self.classes_), class_weight=weight, epochs=self.epochs,
                batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                validation_fraction=self.validation_fraction,
                n_iter_no_change=self.n_iter_no_change, augment=self.augment,
                seed=seed, verbose=self.verbose,
            )
        self.network_ = net
        self.history_ = info["history"]
        self.best_epoch_ = info["best_epoch"]
        self.n_iter_ = len(info["history"])
        self.class_weight_ = info["class_weight"]
        self.validation_indices_ = info["validation_indices"]
        return self

    def _forward(self, X, features: bool):
        check_is_fitted(self, "network_")
        _, x = self._preprocess(X)
        # Batched float32 convolutions round differently with other batch-mates (~1e-5):
        # batching in an order fixed by content makes the output of a set of ROIs
        # independent of their order in X (and bitwise reproducible).
        order = np.argsort([hashlib.blake2b(a.tobytes(), digest_size=16).digest() for a in x],
                           kind="stable")
        with torch_settings(self.n_threads):
            out = forward_batches(self.network_, x[order], self.batch_size,
                                  network_features if features else None)
        result = np.empty(out.shape, dtype=np.float64)
        result[order] = out.numpy()
        return result

    def __getstate__(self):
        # The fitted network travels as arrays (pickle, skops, joblib workers), never as a
        # pickled torch module: a model file then holds data only.
        state = super().__getstate__()
        if state.get("network_") is not None:
            state = {**state, "network_": network_to_arrays(state["network_"])}
        if isinstance(state.get("weights"), os.PathLike):
            # skops stores a Path as a call to its class, which skcalc's loader refuses;
            # the string names the same file (and load_model handles it as a path).
            state = {**state, "weights": os.fspath(state["weights"])}
        return state

    def __setstate__(self, state):
        if isinstance(state.get("network_"), dict):
            state = {**state, "network_": network_from_arrays(state["network_"])}
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags


_PARAMS_DOC = """
    arch : {"resnet50", "vgg16"}, default="resnet50"
        The network, with torchvision's layout: ResNet-50, or VGG-16 without batch norm.
    weights : None, "imagenet" or path, default=None
        ``None``: torchvision's random initialisation, seeded by ``random_state``.
        ``"imagenet"``: torchvision's ImageNet file in the torch hub cache
        (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``:
        ``resnet50-0676ba61.pth`` or ``vgg16-397923af.pth``), as the paper; a clear error
        names the file when it is missing: skcalc never downloads. A path: a state_dict
        with torchvision's key names, read with ``torch.load(weights_only=True)`` (the
        classification head may have any number of outputs)."""

_PARAMS_TAIL = """
    input_size : int, default=64
        Side of the square network input, in pixels. The default keeps CPU fine-tuning on
        a few hundred ROIs to minutes: an 18 mm crop is then sampled at about 0.28 mm per
        pixel, coarser than the 0.07 mm of the image, so the smallest calcifications blur;
        128 costs about 3 times as much per epoch.
    margin_mm : float, default=1.0
        Context kept around the bounding box of the ROI's ``region``, in mm.
    field_of_view_mm : float, optional
        Side of a fixed square field of view (mm) centred on each region, so every input
        has the same mm per pixel. ``None``: the region's bounding box plus margin.
    epochs : int, default=20
        Maximum number of fine-tuning epochs.
    batch_size : int, default=16
        Mini-batch size for training and inference.
    lr : float, default=1e-4
        AdamW learning rate.
    weight_decay : float, default=1e-4
        AdamW (decoupled) weight decay.
    class_weight : "balanced", dict or None, default="balanced"
        Weights of the cross-entropy: ``"balanced"`` is ``n / (n_classes * n_c)`` on the
        training part (the paper's weighted cross-entropy); a dict maps labels to weights.
    validation_fraction : float or None, default=0.2
        Fraction of the exams (``meta["exam_id"]``, else ``meta["patient_id"]``, else
        each ROI alone, with a warning) held out, stratified, to select the epoch with the
        best F1 (the paper's 80/20 split).
        ``None``: no validation, the last epoch is kept.
    n_iter_no_change : int or None, default=5
        Early stopping: stop after this many epochs without a better validation F1.
    augment : bool, default=True
        Random flips, shifts and intensity jitter during fine-tuning.
    n_threads : int, optional
        torch threads during fit and inference (restored afterwards); ``None`` leaves
        torch's setting. Results are reproducible for a given thread count.
    random_state : int, RandomState or None, default=0
        Seed of the initialisation, the validation split, shuffling, augmentation and
        dropout.
    verbose : int, default=0
        Print one line per epoch."""


class DeepROIClassifier(ClassifierMixin, _DeepROIBase):
    __doc__ = f"""Fine-tuned ResNet-50 / VGG-16 on ROI crops (the paper's deep baseline).

    Each ROI is cropped to its region (plus margin), resampled to ``input_size`` pixels,
    scaled to [0, 1] by its own percentiles, replicated to 3 channels and normalised as
    ImageNet (see :func:`skcalc.deep.preprocess_rois`). The network's head is replaced by a
    ``n_classes`` linear layer and the whole network is fine-tuned with class-weighted
    cross-entropy, AdamW with weight decay, data augmentation and early stopping on an
    exam-grouped 80/20 validation split; the epoch with the best validation F1 is kept.

    Parameters
    ----------{_PARAMS_DOC}{_PARAMS_TAIL}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : torch.nn.Module
        The fine-tuned network (eval mode), torchvision's layout with an ``n_classes`` head.
    history_ : list of dict
        Per epoch: ``train_loss``, ``val_loss``, ``val_f1`` (NaN without validation).
    best_epoch_ : int
        0-based epoch whose weights were kept.
    n_iter_ : int
        Epochs run (fewer than ``epochs`` after early stopping).
    class_weight_ : ndarray of shape (n_classes,)
        Weights of the cross-entropy, in the order of ``classes_``.
    validation_indices_ : ndarray of int
        Positions (in ``X``) of the ROIs held out for epoch selection.

    See Also
    --------
    DeepFeatureExtractor : the same networks as feature extractors for LightGBM.
    make_deep_pipeline : the paper's deep baselines as pipelines.

    Notes
    -----
    The paper reports that this baseline over-fits its 211 training ROIs (nested-CV ROC
    AUC 0.42 for ResNet-50, 0.48 for VGG-16). Fine-tuning VGG-16 keeps about 2 GB of
    weights and optimiser state in memory.

    Examples
    --------
    >>> from skcalc.datasets import make_calcification_cohort
    >>> from skcalc.deep import DeepROIClassifier
    >>> rois, y, _ = make_calcification_cohort(n_rois=12, random_state=0)
    >>> clf = DeepROIClassifier(input_size=32, epochs=1, n_threads=1).fit(rois, y)
    >>> clf.predict_proba(rois).shape
    (12, 2)
    """

    def __init__(
        self,
        arch="resnet50",
        *,
        weights=None,
        input_size=64,
        margin_mm=1.0,
        field_of_view_mm=None,
        epochs=20,
        batch_size=16,
        lr=1e-4,
        weight_decay=1e-4,
        class_weight="balanced",
        validation_fraction=0.2,
        n_iter_no_change=5,
        augment=True,
        n_threads=None,
        random_state=0,
        verbose=0,
    ):
        self.arch = arch
        self.weights = weights
        self.input_size = input_size
        self.margin_mm = margin_mm
        self.field_of_view_mm = field_of_view_mm
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.augment = augment
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fine-tune the network on the ROIs ``X`` with labels ``y``.

        Parameters
        ----------
        X : list of ROI
        y : array-like of shape (n_rois,)

        Returns
        -------
        self : DeepROIClassifier
        """
        if y is None:
            raise ValueError("DeepROIClassifier requires y to be passed, but the target y "
                             "is None")
        return self._fit_network(X, y)

    def predict_proba(self, X):
        """Softmax of the network's outputs.

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        proba : ndarray of shape (n_rois, n_classes)
        """
        logits = self._forward(X, features=False)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def extract_features(self, X):
        """Penultimate features of the fine-tuned network (those of
        :class:`DeepFeatureExtractor`).

        The network is the one ``fit`` fine-tuned, so a fine-tuned classifier and LightGBM
        on its features share one training: ``DeepFeatureExtractor(fine_tune=True)`` with
        the same parameters would train exactly this network again.

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        features : ndarray of shape (n_rois, 2048 or 4096)
        """
        return self._forward(X, features=True)

    def predict(self, X):
        """The class of highest probability.

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        y_pred : ndarray of shape (n_rois,)
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class DeepFeatureExtractor(TransformerMixin, _DeepROIBase):
    __doc__ = f"""Deep features of ROI crops: ResNet-50 (2048) or VGG-16 (4096).

    ResNet-50 gives its globally average-pooled features (the input of ``fc``), VGG-16 the
    output of its second fully connected layer (after ReLU). With ``fine_tune=False`` the
    network keeps ``weights`` (the paper's "pre-trained, not fine-tuned" baseline with
    ``weights="imagenet"``) and ``fit`` only loads it; with ``fine_tune=True`` ``fit``
    first fine-tunes it on ``(X, y)`` exactly as :class:`DeepROIClassifier` (the paper's
    "fine-tuned ResNet-50 features + LightGBM"). Preprocessing as
    :class:`DeepROIClassifier`.

    Parameters
    ----------
    arch : {{"resnet50", "vgg16"}}, default="resnet50"
        The network.
    weights : None, "imagenet" or path, default=None
        See :class:`DeepROIClassifier`.
    fine_tune : bool, default=False
        Fine-tune on ``(X, y)`` in ``fit`` (``y`` required) before extracting features;
        the parameters from ``epochs`` to ``augment`` apply to fine-tuning only.{_PARAMS_TAIL}

    Attributes
    ----------
    network_ : torch.nn.Module
        The network (eval mode).
    n_features_out_ : int
        2048 (ResNet-50) or 4096 (VGG-16).
    classes_, history_, best_epoch_, n_iter_, class_weight_, validation_indices_
        As :class:`DeepROIClassifier`, with ``fine_tune=True`` only.

    Notes
    -----
    Inference runs in batches of ``batch_size`` ROIs taken in an order fixed by their
    content, so the features of a set of ROIs do not depend on their order in ``X``.
    float32 convolutions round differently with other batch-mates: an ROI's features can
    differ by about 1e-5 (relative) when it is transformed with other ROIs.

    Cost (ResNet-50, ``input_size=64``, one CPU thread): about 15 ms per ROI, i.e. a few
    seconds for the paper's 276 ROIs; VGG-16 about 3 times as much. The features are
    recomputed at each ``fit``/``transform`` (no per-ROI cache).

    Examples
    --------
    >>> from skcalc.datasets import make_calcification_cohort
    >>> from skcalc.deep import DeepFeatureExtractor
    >>> rois, y, _ = make_calcification_cohort(n_rois=4, random_state=0)
    >>> ext = DeepFeatureExtractor(input_size=32, n_threads=1).fit(rois)
    >>> ext.transform(rois).shape
    (4, 2048)
    >>> ext.get_feature_names_out()[:2].tolist()
    ['resnet50_0', 'resnet50_1']
    """

    _parameter_constraints: dict = {
        **_DeepROIBase._parameter_constraints,
        "fine_tune": ["boolean"],
    }

    def __init__(
        self,
        arch="resnet50",
        *,
        weights=None,
        fine_tune=False,
        input_size=64,
        margin_mm=1.0,
        field_of_view_mm=None,
        epochs=20,
        batch_size=16,
        lr=1e-4,
        weight_decay=1e-4,
        class_weight="balanced",
        validation_fraction=0.2,
        n_iter_no_change=5,
        augment=True,
        n_threads=None,
        random_state=0,
        verbose=0,
    ):
        self.arch = arch
        self.weights = weights
        self.fine_tune = fine_tune
        self.input_size = input_size
        self.margin_mm = margin_mm
        self.field_of_view_mm = field_of_view_mm
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.augment = augment
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the network; with ``fine_tune=True``, fine-tune it on ``(X, y)``.

        Parameters
        ----------
        X : list of ROI
        y : array-like of shape (n_rois,), optional
            Required with ``fine_tune=True``; ignored otherwise.

        Returns
        -------
        self : DeepFeatureExtractor
        """
        if self.fine_tune and y is None:
            raise ValueError("DeepFeatureExtractor(fine_tune=True) requires y to be passed, "
                             "but the target y is None")
        self._fit_network(X, y if self.fine_tune else None)
        self.n_features_out_ = N_FEATURES[self.arch]
        return self

    def transform(self, X):
        """Deep features of each ROI.

        Parameters
        ----------
        X : list of ROI

        Returns
        -------
        features : ndarray of shape (n_rois, n_features_out_)
        """
        return self._forward(X, features=True)

    def get_feature_names_out(self, input_features=None):
        """``"<arch>_<i>"`` for each output feature.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        names : ndarray of str
        """
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.arch}_{i}" for i in range(self.n_features_out_)],
                          dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.fine_tune
        return tags
