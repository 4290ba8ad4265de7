"""One self-contained HTML file per evaluation: tables, figures and example overlays.

The file links no external resource: CSS is inline, every image is a base64 PNG ``data:``
URI, and there is no script, so it opens from disk in any browser, offline, and can be
mailed or archived as is. Numbers come from :func:`skcalc.metrics.clinical_report` (the same
bootstrap intervals as ``report.json``); each value cell also carries the full-precision
value in a ``data-value`` attribute for tools.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.validation import check_consistent_length

from ..metrics import clinical_report
from ._figures import figure_data_uri

__all__ = ["render_html_report", "write_html_report", "write_protocol_report"]

_METRIC_NAMES = {
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "f1": "F1 (actionable)",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "roc_auc": "ROC AUC",
}

_CATEGORIES = (
    ("tp", "True positives", "actionable, called actionable (highest probability first)"),
    ("fp", "False positives", "benign, called actionable (highest probability first)"),
    ("fn", "False negatives", "actionable, called benign (lowest probability first)"),
    ("tn", "True negatives", "benign, called benign (lowest probability first)"),
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; border-bottom: 2px solid #0072B2; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
p.meta { color: #555; margin: 0 0 12px; font-size: 0.92em; }
p.note { color: #444; font-size: 0.9em; max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.93em; }
th, td { border: 1px solid #c8c8c8; padding: 4px 10px; text-align: left; }
th { background: #eef3f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.head td { font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #c8c8c8; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .big { font-size: 1.5em; font-weight: 600; }
.card .small { color: #555; font-size: 0.85em; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
figcaption { font-size: 0.85em; color: #444; max-width: 460px; }
.examples { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
            gap: 16px; }
.examples figure img { width: 100%; max-width: 460px; }
.cm td.num { min-width: 70px; font-size: 1.1em; }
nav.toc { font-size: 0.9em; margin: 6px 0 0; }
nav.toc a { color: #0072B2; text-decoration: none; }
footer { margin-top: 40px; color: #666; font-size: 0.85em; }
"""


# --------------------------------------------------------------------------- helpers
class _Cell(str):
    """A ready-made ``<td>``/``<th>`` element; any other table entry is escaped text."""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return "n/a" if not math.isfinite(float(x)) else f"{float(x):.{digits}f}"
    return str(x)


def _num_cell(x: Any, digits: int = 3) -> str:
    """A right-aligned number; ``data-value`` keeps the full precision for tools."""
    if x is None:
        return _Cell('<td class="num">n/a</td>')
    v = int(x) if isinstance(x, (int, np.integer)) else float(x)
    data = f' data-value="{v!r}"' if isinstance(v, int) or math.isfinite(v) else ""
    return _Cell(f'<td class="num"{data}>{_esc(_fmt(v, digits))}</td>')


def _ci(lo: Any, hi: Any) -> str:
    if lo is None or hi is None:
        return "n/a"
    return f"{_fmt(lo)} to {_fmt(hi)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    """Rows are lists of ready-made ``<td>`` strings (or plain text, escaped here)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = []
    for row in rows:
        cells = [c if isinstance(c, _Cell) else f"<td>{_esc(c)}</td>" for c in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}>{head}<tbody>{''.join(body)}</tbody></table>"


def _cell(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)) or v is None:
        return _Cell(f"<td>{_esc(_fmt(v))}</td>")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return _num_cell(v, 4 if isinstance(v, (float, np.floating)) else 0)
    if isinstance(v, (dict, list, tuple)):
        return _Cell(f"<td>{_esc(_compact(v))}</td>")
    return _Cell(f"<td>{_esc(v)}</td>")


def _compact(v: Any) -> str:
    import json

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.dumps(v, default=default)


def _generic_table(obj: Any) -> str:
    """A pandas DataFrame, a mapping (key/value rows) or a sequence of row mappings."""
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas DataFrame
        frame = obj.reset_index() if not _default_index(obj) else obj
        header = [str(c) for c in frame.columns]
        rows = [[_cell(v) for v in rec] for rec in frame.itertuples(index=False)]
        return _table(header, rows)
    if isinstance(obj, Mapping):
        return _table(["name", "value"], [[str(k), _cell(v)] for k, v in obj.items()])
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)) and all(
        isinstance(r, Mapping) for r in obj
    ):
        header: list[str] = []
        for r in obj:
            header += [str(k) for k in r if str(k) not in header]
        rows = [[_cell(r.get(h)) for h in header] for r in obj]
        return _table(header, rows)
    raise TypeError(
        "extra_tables values must be a pandas DataFrame, a mapping or a list of mappings; "
        f"got {type(obj).__name__}"
    )


def _default_index(frame: Any) -> bool:
    idx = frame.index
    return idx.name is None and list(idx) == list(range(len(idx)))


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{_esc(sid)}"><h2>{_esc(title)}</h2>\n{body}\n</section>\n'


def _figure(uri: str, caption: str, alt: str, width: int | None = None) -> str:
    w = f' width="{int(width)}"' if width else ""
    return (f'<figure><img src="{uri}" alt="{_esc(alt)}"{w}>'
            f"<figcaption>{caption}</figcaption></figure>")


def _bootstrap_brier(y: np.ndarray, p: np.ndarray, groups, n_bootstrap: int,
                     confidence: float, random_state) -> tuple[float | None, float | None]:
    """Percentile interval of the Brier score, resampling the units of clinical_report."""
    n = len(y)
    if n_bootstrap <= 0 or n == 0:
        return None, None
    if groups is not None:
        _, unit = np.unique(groups, return_inverse=True)
    else:
        unit = np.arange(n)
    n_units = int(unit.max()) + 1
    rng = check_random_state(random_state)
    wu = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_bootstrap)
    w = wu[:, unit].astype(np.float64)
    err = (p - y) ** 2
    tot = w.sum(axis=1)
    vals = (w @ err)[tot > 0] / tot[tot > 0]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.percentile(vals, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def _calibration_note(calibrated: bool | None, threshold: float) -> str:
    t, pct = _esc(_fmt(threshold, 2)), _esc(_fmt(100 * threshold, 0))
    if calibrated:
        return (
            "These probabilities were calibrated on held-out folds of the training exams "
            f"(<code>skcalc.calibration</code>): the threshold {t} reads as an estimated risk "
            f"of {pct} % above which a biopsy is recommended, as far as the reliability "
            "diagram confirms it on the held-out exams."
        )
    start = ("They are not calibrated" if calibrated is False
             else "Unless they were calibrated")
    return (
        f"The threshold {t} is applied to these probabilities. {start}, it is not a {pct} % "
        "risk: SMOTE resampling and boosting push them towards 0, 1 and a balanced prior. "
        "Calibrated probabilities (<code>skcalc.calibration</code>) make the threshold the "
        "estimated risk above which a biopsy is recommended."
    )


def _pick_examples(y_pos: np.ndarray, scores: np.ndarray, threshold: float,
                   n_examples: int) -> dict[str, np.ndarray]:
    called = scores >= threshold
    out = {}
    for key, _, _ in _CATEGORIES:
        want_pos = key in ("tp", "fn")
        want_call = key in ("tp", "fp")
        idx = np.flatnonzero((y_pos == want_pos) & (called == want_call))
        # most confident: farthest from the threshold on its side (stable on ties)
        order = np.argsort(-scores[idx] if want_call else scores[idx], kind="stable")
        out[key] = idx[order[:n_examples]]
    return out


def _roi_figure(roi: Any, score: float, threshold: float, truth: bool, dpi: int) -> str:
    from ..plotting import plot_roi

    ax = plot_roi(roi, proba=float(score), threshold=threshold, y_true=int(truth),
                  show_background=roi.masks is not None)
    ax.figure.set_size_inches(4.6, 5.6)
    return figure_data_uri(ax.figure, dpi=dpi)


# --------------------------------------------------------------------------- render
def render_html_report(
    *,
    y_true,
    scores,
    threshold: float,
    groups=None,
    rois: Sequence[Any] | None = None,
    title: str = "skcalc evaluation report",
    description: str | None = None,
    extra_tables: Mapping[str, Any] | None = None,
    other_curves: Mapping[str, tuple[Any, Any]] | None = None,
    report: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: Any = 0,
    n_examples: int = 2,
    n_bins: int | str = "auto",
    pos_label=1,
    calibrated: bool | None = None,
) -> str:
    """Render the evaluation report as one self-contained HTML document (a string).

    See :func:`write_html_report` for the parameters; this function writes nothing.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> doc = render_html_report(y_true=[0, 0, 1, 1], scores=[0.1, 0.6, 0.4, 0.9],
    ...                          threshold=0.4, groups=[1, 1, 2, 3], n_bootstrap=0)
    >>> doc.startswith("<!DOCTYPE html>"), 'id="metrics"' in doc, "http" in doc
    (True, True, False)
    """
    # Figures are rendered to PNG bytes and closed: any backend works, none is switched.
    import matplotlib.pyplot as plt

    from ..plotting import plot_confusion_matrix, plot_reliability, plot_roc

    y_true = column_or_1d(y_true)
    scores = column_or_1d(scores).astype(np.float64)
    check_consistent_length(y_true, scores)
    labels = np.unique(y_true).tolist()
    if len(labels) == 2 and pos_label not in labels:
        # Otherwise every count of actionable ROIs would silently be 0.
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the labels of y_true {labels}; pass "
            "pos_label=<the actionable label>"
        )
    if not np.isfinite(scores).all() or scores.min(initial=0) < 0 or scores.max(initial=0) > 1:
        raise ValueError("scores must be probabilities of the actionable class, in [0, 1]")
    if not (np.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    if groups is not None:
        groups = column_or_1d(groups)
        check_consistent_length(y_true, groups)
    if rois is not None:
        rois = list(rois)
        check_consistent_length(y_true, rois)
    if report is None:
        report = clinical_report(
            y_true, scores, threshold=threshold, groups=groups, n_bootstrap=n_bootstrap,
            confidence=confidence, random_state=random_state, pos_label=pos_label,
        )
    else:
        if report["n_samples"] != len(y_true) or not math.isclose(
            report["threshold"], float(threshold)
        ):
            raise ValueError(
                f"the given report is of {report['n_samples']} samples at threshold "
                f"{report['threshold']}; y_true has {len(y_true)} at threshold {threshold}"
            )
        n_bootstrap, confidence = report["n_bootstrap"], report["confidence"]
    y_pos = y_true == pos_label
    n, n_pos = len(y_true), int(y_pos.sum())
    n_exams = len(np.unique(groups)) if groups is not None else None
    conf_pct = f"{100 * confidence:g} %"

    parts: list[str] = []
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from .. import __version__

    parts.append(f"<header><h1>{_esc(title)}</h1>")
    parts.append(
        f'<p class="meta">skcalc {_esc(__version__)}, {now}. Decision rule: actionable '
        f"iff P(actionable) &ge; {_esc(_fmt(threshold, 3))}.</p>"
    )
    if description:
        parts.append(f'<p class="note">{_esc(description)}</p>')
    nav = [("summary", "Held-out data"), ("metrics", "Metrics"),
           ("confusion-matrix", "Confusion matrix and ROC"),
           ("spared-biopsies", "Spared biopsies"), ("calibration", "Calibration")]
    if rois is not None:
        nav.append(("examples", "Most confident decisions"))
    nav += [(f"extra-{i}", str(name)) for i, name in enumerate(extra_tables or {})]
    parts.append('<nav class="toc">' + " &middot; ".join(
        f'<a href="#{_esc(sid)}">{_esc(name)}</a>' for sid, name in nav) + "</nav>")
    parts.append("</header>")

    # ---- summary
    cm = report["confusion_matrix"]
    unit = report.get("bootstrap_unit", "group" if groups is not None else "sample")
    boot_txt = (
        f"{conf_pct} percentile intervals from {report['n_bootstrap']} bootstrap resamples of "
        + (f"whole exams ({report.get('n_units')} exams, cluster bootstrap)" if unit == "group"
           else f"individual samples ({report.get('n_units')} samples; no exam ids given, so "
           "intervals are too narrow when an exam has several samples)")
        if report["n_bootstrap"] else "no bootstrap (intervals not computed)"
    )
    rows = [
        ["Held-out samples", _num_cell(n)],
        ["Actionable (positive)", _num_cell(n_pos)],
        ["Benign (negative)", _num_cell(n - n_pos)],
        ["Exams (groups)", _num_cell(n_exams) if n_exams is not None else "not given"],
        ["Exams with an actionable sample",
         _num_cell(len(np.unique(groups[y_pos]))) if groups is not None else "not given"],
        ["Decision threshold", _num_cell(float(threshold))],
        ["Intervals", boot_txt],
    ]
    cards = []
    for key in ("sensitivity", "specificity", "roc_auc"):
        m = report["metrics"][key]
        cards.append(
            f'<div class="card"><div class="small">{_esc(_METRIC_NAMES[key])}</div>'
            f'<div class="big">{_esc(_fmt(m["value"], 2))}</div>'
            f'<div class="small">{conf_pct} CI {_esc(_ci(m["ci_low"], m["ci_high"]))}</div></div>'
        )
    spared = report.get("benign_spared_at_threshold")
    if spared is not None:
        cards.append(
            f'<div class="card"><div class="small">Benign and called benign</div>'
            f'<div class="big">{cm["tn"]} / {n}</div>'
            f'<div class="small">{_esc(_fmt(100 * spared, 0))} % of all samples spared biopsy'
            "</div></div>"
        )
    parts.append(_section(
        "summary", "Held-out data",
        f'<div class="cards">{"".join(cards)}</div>' + _table([], rows, cls="summary"),
    ))

    # ---- metrics
    rows = []
    for key, m in report["metrics"].items():
        rows.append([
            _Cell(f'<td data-metric="{_esc(key)}">{_esc(_METRIC_NAMES.get(key, key))}</td>'),
            _num_cell(m["value"]), _num_cell(m["ci_low"]), _num_cell(m["ci_high"]),
        ])
    parts.append(_section(
        "metrics", "Clinical metrics",
        _table(["metric", "value", f"{conf_pct} CI low", f"{conf_pct} CI high"], rows,
               cls="metrics")
        + f'<p class="note">All metrics except ROC AUC are at threshold {_esc(_fmt(threshold))}'
        ". PPV and NPV depend on the prevalence of the held-out set "
        f"({_esc(_fmt(n_pos / n if n else None, 2))}). n/a: undefined (no sample in the "
        "denominator) or no interval.</p>",
    ))

    # ---- confusion matrix and ROC
    fig, ax = plt.subplots(figsize=(3.8, 3.4), layout="constrained")
    plot_confusion_matrix(y_pos.astype(int), (scores >= threshold).astype(int), ax=ax)
    ax.set_title(f"threshold {threshold:g}")
    cm_uri = figure_data_uri(fig)
    cm_table = (
        '<table class="cm"><thead><tr><th>true \\ predicted</th><th>benign</th>'
        "<th>actionable</th><th>total</th></tr></thead><tbody>"
        f'<tr><th>benign</th>{_num_cell(cm["tn"])}{_num_cell(cm["fp"])}'
        f'{_num_cell(cm["tn"] + cm["fp"])}</tr>'
        f'<tr><th>actionable</th>{_num_cell(cm["fn"])}{_num_cell(cm["tp"])}'
        f'{_num_cell(cm["fn"] + cm["tp"])}</tr></tbody></table>'
    )
    n_other = len(other_curves or {})
    # Many curves: a taller figure with the legend below the axes, so it hides no curve.
    fig, ax = plt.subplots(figsize=(4.6, 4.6 + (0.22 * (n_other + 2) if n_other > 2 else 0)),
                           layout="constrained")
    if len(np.unique(y_pos)) == 2:
        plot_roc(y_pos.astype(int), scores, ax=ax, threshold=threshold, label="this model")
        for name, (yt, sc) in (other_curves or {}).items():
            plot_roc(column_or_1d(yt) == pos_label, column_or_1d(sc), ax=ax, label=str(name))
        if n_other > 2:
            curves = [ln for ln in ax.lines if not str(ln.get_label()).startswith(("_", "chance"))]
            ax.legend(handles=curves, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                      fontsize=7, frameon=False)
        ax.set_title("ROC curve, held-out samples")
        roc_caption = (f"ROC curve; the dot is the operating point at threshold "
                       f"{_esc(_fmt(threshold))}.")
    else:
        ax.text(0.5, 0.5, "ROC undefined: one class only", ha="center", va="center")
        ax.set_axis_off()
        roc_caption = "The held-out set has a single class: no ROC curve."
    roc_uri = figure_data_uri(fig)
    parts.append(_section(
        "confusion-matrix", "Confusion matrix and ROC curve",
        '<div class="row"><div>' + cm_table
        + _figure(cm_uri, "Rows: true class; columns: predicted class.", "confusion matrix")
        + "</div>" + _figure(roc_uri, roc_caption, "ROC curve") + "</div>",
    ))

    # ---- spared biopsies
    rows = []
    for s in report.get("spared_biopsies", []):
        rows.append([
            _num_cell(s["sensitivity_target"], 2), _num_cell(s["threshold"]),
            _num_cell(s["n_spared"]), _num_cell(s["benign_fraction"]),
            _num_cell(s["all_fraction"]),
        ])
    if rows:
        parts.append(_section(
            "spared-biopsies", "Biopsies spared at a fixed sensitivity",
            _table(["sensitivity kept", "highest threshold", "benign spared",
                    "share of benign", "share of all samples"], rows)
            + '<p class="note">For each sensitivity, the highest threshold that keeps it on '
            "this held-out set (chosen after seeing the labels, hence optimistic), and the "
            "benign samples scoring below it.</p>",
        ))

    # ---- calibration
    brier = float(brier_score_loss(y_pos.astype(int), scores)) if n else None
    b_lo, b_hi = _bootstrap_brier(y_pos.astype(float), scores, groups, n_bootstrap,
                                  confidence, random_state)
    prev = n_pos / n if n else None
    if n_bins == "auto":
        n_bins = int(np.clip(round(n / 8), 3, 10))
    fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
    plot_reliability(y_pos.astype(int), scores, n_bins=n_bins, threshold=threshold, ax=ax)
    ax.set_title("Reliability diagram, held-out samples")
    rel_uri = figure_data_uri(fig)
    from ..plotting import reliability_table

    tab = reliability_table(y_pos.astype(int), scores, n_bins=n_bins)
    rel_rows = [
        [f"{tab['edges'][i]:.2f} to {tab['edges'][i + 1]:.2f}", _num_cell(int(tab["count"][i])),
         _num_cell(None if tab["count"][i] == 0 else float(tab["mean_predicted"][i])),
         _num_cell(None if tab["count"][i] == 0 else float(tab["fraction_positive"][i]))]
        for i in range(len(tab["count"]))
    ]
    near = float(np.mean((scores < 0.05) | (scores > 0.95))) if n else 0.0
    parts.append(_section(
        "calibration", "Calibration",
        '<table class="brier"><tbody>'
        f'<tr><th>Brier score</th>{_num_cell(brier)}<td>{conf_pct} CI {_esc(_ci(b_lo, b_hi))}'
        "</td></tr>"
        f'<tr><th>Brier of always predicting the prevalence</th>'
        f'{_num_cell(None if prev is None else prev * (1 - prev))}<td>reference: lower is '
        "better, 0 is perfect</td></tr>"
        f'<tr><th>Probabilities below 0.05 or above 0.95</th>{_num_cell(near)}'
        "<td>share of samples</td></tr></tbody></table>"
        '<div class="row">' + _figure(
            rel_uri, "Observed fraction of actionable samples per probability bin (marker "
            "area: bin count; grey bars: histogram of probabilities). On the diagonal, a "
            "probability p means that a fraction p of such samples are actionable.",
            "reliability diagram")
        + "<div>" + _table(["probability bin", "n", "mean predicted", "observed actionable"],
                           rel_rows) + "</div></div>"
        + f'<p class="note">{_calibration_note(calibrated, threshold)}</p>',
    ))

    # ---- examples
    if rois is not None:
        picks = _pick_examples(y_pos, scores, threshold, n_examples)
        body = []
        list_rows = []
        for key, name, what in _CATEGORIES:
            idx = picks[key]
            body.append(f"<h3>{_esc(name)} ({cm[key]} in total): {_esc(what)}</h3>")
            if len(idx) == 0:
                body.append('<p class="note">none</p>')
                continue
            figs = []
            for i in idx:
                roi = rois[i]
                rid = getattr(roi, "roi_id", str(i))
                list_rows.append([name, rid, _num_cell(float(scores[i])),
                                  "actionable" if y_pos[i] else "benign",
                                  str(groups[i]) if groups is not None else ""])
                uri = _roi_figure(roi, scores[i], threshold, bool(y_pos[i]), dpi=100)
                figs.append(_figure(uri, f"{_esc(rid)}: P = {_esc(_fmt(scores[i]))}",
                                    f"overlay of {rid}"))
            body.append('<div class="examples">' + "".join(figs) + "</div>")
        body.insert(0, '<p class="note">Overlays: segmented calcifications matching the '
                    "reference in bluish green, segmented only in orange (all segmented "
                    "objects are orange when there is no reference), missed reference objects "
                    "in dashed sky blue, the annotated region dashed yellow, background bands "
                    "reddish purple; frame colour: the decision (vermillion actionable, "
                    "blue benign).</p>")
        body.append("<h3>Shown samples</h3>" + _table(
            ["category", "id", "P(actionable)", "truth", "exam"], list_rows))
        parts.append(_section("examples", "Most confident decisions", "".join(body)))

    # ---- extra tables
    for i, (name, obj) in enumerate((extra_tables or {}).items()):
        parts.append(_section(f"extra-{i}", str(name), _generic_table(obj)))

    parts.append(
        "<footer>Self-contained report: styles and images are embedded in this file; it "
        "links no external resource (only its own sections) and runs no script.</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head>\n<body><main>\n" + "\n".join(parts)
        + "\n</main></body></html>\n"
    )


def write_html_report(
    path: str | os.PathLike,
    *,
    y_true,
    scores,
    threshold: float,
    groups=None,
    rois: Sequence[Any] | None = None,
    title: str = "skcalc evaluation report",
    description: str | None = None,
    extra_tables: Mapping[str, Any] | None = None,
    other_curves: Mapping[str, tuple[Any, Any]] | None = None,
    report: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: Any = 0,
    n_examples: int = 2,
    n_bins: int | str = "auto",
    pos_label=1,
    calibrated: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one self-contained HTML report of a held-out evaluation, atomically.

    Sections: held-out data (n, per class, number of exams, the bootstrap scheme);
    clinical metrics with bootstrap intervals (:func:`skcalc.metrics.clinical_report`);
    confusion matrix and ROC curve; biopsies spared at sensitivity 1.0 and 0.95;
    calibration (Brier score with its interval, reliability diagram and table); with
    ``rois``, the most confident true/false positives and negatives as overlays
    (:func:`skcalc.plotting.plot_roi`); then ``extra_tables``. The file embeds its styles
    and images (base64 PNG ``data:`` URIs) and links nothing: it opens in any browser
    without a server or network.

    Parameters
    ----------
    path : str or path-like
        Output ``.html`` file (parent folders are created).
    y_true : array-like of shape (n_samples,)
        Held-out labels (``pos_label`` = actionable).
    scores : array-like of shape (n_samples,)
        Predicted probability of actionable, in [0, 1].
    threshold : float
        Decision threshold (actionable iff ``score >= threshold``).
    groups : array-like of shape (n_samples,), optional
        Exam ids: counted, and resampled whole by the bootstrap.
    rois : sequence of ROI, optional
        The held-out ROIs, aligned with ``y_true``; overlays of the most confident
        decisions are drawn from them (with their segmentation when attached).
    title, description : str
        Page title and an optional paragraph under it.
    extra_tables : mapping of str -> table, optional
        More sections, one table each: a pandas DataFrame, a mapping (name/value rows) or
        a list of row mappings (e.g. best parameters, nested-CV scores, timings).
    other_curves : mapping of str -> (y_true, scores), optional
        More ROC curves on the same axes (e.g. the mean/std baseline).
    report : ClinicalReport, optional
        An already computed :func:`~skcalc.metrics.clinical_report` of these samples at
        this threshold (reused as is, so the page shows the very numbers of
        ``report.json``); computed here otherwise.
    n_bootstrap, confidence, random_state
        Passed to :func:`~skcalc.metrics.clinical_report` (and used for the Brier
        interval).
    n_examples : int, default=2
        Overlays per category (TP, FP, FN, TN).
    n_bins : int or "auto", default="auto"
        Equal-width bins of the reliability diagram; "auto": about 8 samples per bin,
        between 3 and 10 bins.
    pos_label : int, float, bool or str, default=1
        The actionable label of ``y_true`` (e.g. ``"actionable"``). When ``y_true`` has
        two labels, ``pos_label`` must be one of them (:class:`ValueError` otherwise).
    calibrated : bool, optional
        Whether ``scores`` are calibrated probabilities (e.g. from
        :class:`skcalc.calibration.CalibratedClassifier`); only changes how the calibration
        section explains the threshold (None: says nothing either way).
    overwrite : bool, default=False
        Replace an existing file (otherwise :class:`FileExistsError`).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    IsADirectoryError
        ``path`` is a folder (whatever ``overwrite``).
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        Scores outside [0, 1], a threshold outside [0, 1], ``pos_label`` not one of the
        two labels of ``y_true``, or inputs of different lengths.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "report.html")
    >>> write_html_report(path, y_true=[0, 0, 1, 1], scores=[0.1, 0.6, 0.4, 0.9],
    ...                   threshold=0.4, groups=["a", "a", "b", "c"], n_bootstrap=50).name
    'report.html'
    """
    from ..io import write_text_atomic

    target = Path(os.fspath(path))
    # A folder first: overwrite=True could not replace it either.
    if target.is_dir():
        raise IsADirectoryError(
            f"{target} is a folder; give the report's file name (e.g. {target / 'report.html'})"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    doc = render_html_report(
        y_true=y_true, scores=scores, threshold=threshold, groups=groups, rois=rois,
        title=title, description=description, extra_tables=extra_tables,
        other_curves=other_curves, report=report, n_bootstrap=n_bootstrap,
        confidence=confidence, random_state=random_state, n_examples=n_examples,
        n_bins=n_bins, pos_label=pos_label, calibrated=calibrated,
    )
    write_text_atomic(target, doc)
    return target


def _image_steps(model: Any) -> list:
    # A calibrated model holds fitted copies of the pipeline: use the first one.
    fitted = getattr(model, "calibrated_", None)
    if fitted is not None:
        model = fitted.calibrated_classifiers_[0].estimator
    steps = getattr(model, "named_steps", None)
    if not steps:
        return []
    return [steps[name] for name in ("segment", "masks") if name in steps]


def write_protocol_report(
    path: str | os.PathLike,
    result: Any,
    *,
    groups=None,
    rois: Sequence[Any] | None = None,
    segment: bool = True,
    title: str = "skcalc evaluation report",
    description: str | None = None,
    extra_tables: Mapping[str, Any] | None = None,
    other_results: Mapping[str, Any] | None = None,
    n_examples: int = 2,
    overwrite: bool = False,
) -> Path:
    """Write the HTML report of a :class:`skcalc.model_selection.ProtocolResult`.

    The held-out labels, probabilities, threshold and clinical report (with its bootstrap
    intervals) come from ``result``; the best parameters, the nested-CV scores (when run)
    and the timings are added as tables.

    Parameters
    ----------
    path : str or path-like
        Output ``.html`` file.
    result : ProtocolResult
        The output of :func:`skcalc.model_selection.evaluate_protocol`.
    groups : array-like of shape (n_all,), optional
        The exam ids given to ``evaluate_protocol`` (all samples; the held-out ones are
        taken with ``result.test_index``).
    rois : sequence of ROI of length n_all, optional
        The ROIs given to ``evaluate_protocol``; the shown examples are taken from the
        held-out ones.
    segment : bool, default=True
        Run the refitted model's ``segment`` and ``masks`` steps on the shown ROIs that
        carry no segmentation yet (a handful of ROIs; cached when the pipeline caches).
    title, description, extra_tables, n_examples, overwrite
        As in :func:`write_html_report`.
    other_results : mapping of str -> ProtocolResult, optional
        More ROC curves (e.g. ``{"mean/std baseline": baseline_result}``).

    Returns
    -------
    path : pathlib.Path
    """
    test = np.asarray(result.test_index)
    g = None if groups is None else np.asarray(groups)[test]
    shown = None
    if rois is not None:
        rois = list(rois)
        shown = [rois[i] for i in test]
    tables: dict[str, Any] = {"Best parameters (grouped grid search)": dict(result.best_params)}
    nested = getattr(result, "nested", None)
    if nested:
        rows = []
        for key, m in nested.items():
            if isinstance(m, Mapping) and "mean" in m:
                rows.append({"metric": key, "mean": m["mean"], "std": m["std"],
                             "folds": ", ".join(_fmt(v) for v in m["folds"])})
        tables[f"Nested cross-validation ({nested.get('n_outer')} outer x "
               f"{nested.get('n_inner')} inner grouped folds)"] = rows
    if getattr(result, "timings", None):
        tables["Timings (seconds)"] = {k: float(v) for k, v in result.timings.items()
                                       if isinstance(v, (int, float))}
    tables.update(extra_tables or {})
    others = {name: (r.y_test, r.y_score) for name, r in (other_results or {}).items()}
    model = getattr(getattr(result, "search", None), "best_estimator_", None)
    calibrated = None if model is None else hasattr(model, "calibrated_")

    if shown is not None and segment:
        steps = _image_steps(model)
        y_pos = np.asarray(result.y_test) == 1
        picks = _pick_examples(y_pos, np.asarray(result.y_score, float), result.threshold,
                               n_examples)
        need = sorted({int(i) for idx in picks.values() for i in idx
                       if getattr(shown[i], "calcifications", None) is None})
        if steps and need:
            part = [shown[i] for i in need]
            for step in steps:
                part = step.transform(part)
            for i, r in zip(need, part):
                shown[i] = r
    return write_html_report(
        path, y_true=result.y_test, scores=result.y_score, threshold=result.threshold,
        groups=g, rois=shown, title=title, description=description, extra_tables=tables,
        other_curves=others, report=result.report, n_examples=n_examples,
        calibrated=calibrated, overwrite=overwrite,
    )
