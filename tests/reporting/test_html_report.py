import base64
import html.parser
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import brier_score_loss  # noqa: E402

from skcalc import ROI  # noqa: E402
from skcalc.metrics import clinical_report  # noqa: E402
from skcalc.model_selection import ProtocolResult  # noqa: E402
from skcalc.reporting import render_html_report, write_html_report, write_protocol_report  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


class Page(html.parser.HTMLParser):
    """Collects what the tests look at: sections, links, images, cells, tables."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.srcs, self.hrefs, self.tags = [], [], [], []
        self.metric_rows = {}  # metric -> [data-value of value, ci_low, ci_high]
        self.h3 = []
        self.title = ""
        self._row = None
        self._in = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        for key in ("src", "href", "action", "data", "poster"):
            if key in a:
                (self.srcs if key != "href" else self.hrefs).append(a[key])
        if tag == "tr":
            self._row = []
        if tag == "td" and self._row is not None:
            if "data-metric" in a:
                self._row.append(("metric", a["data-metric"]))
            else:
                self._row.append(("value", a.get("data-value")))
        if tag in ("h3", "title"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            if self._row[0][0] == "metric":
                self.metric_rows[self._row[0][1]] = [v for _, v in self._row[1:]]
            self._row = None
        if tag in ("h3", "title"):
            self._in = None

    def handle_data(self, data):
        if self._in == "h3":
            self.h3.append(data)
        elif self._in == "title":
            self.title += data


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]
    s = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    groups = np.repeat(np.arange(n // 2), 2)
    return y, s, groups


def _rois(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        lab = np.zeros((40, 40), np.int32)
        lab[10:13, 10:13] = 1
        lab[25:27, 28:30] = 2
        out.append(ROI(rng.random((40, 40)), spacing=0.1, calcifications=lab,
                       meta={"roi_id": f"roi-{i}"}))
    return out


def _assert_self_contained(text, page):
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    # only links to the page's own sections
    assert page.hrefs and all(h.startswith("#") and h[1:] in page.sections for h in page.hrefs)
    for src in page.srcs:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert not re.search(r"url\(", text)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|file:|//|/)", text, re.I)
    assert "@import" not in text


def test_report_sections_numbers_and_no_external_resource(tmp_path):
    y, s, groups = _data()
    path = tmp_path / "out" / "report.html"
    out = write_html_report(path, y_true=y, scores=s, threshold=0.4, groups=groups,
                            n_bootstrap=200, random_state=3, title="Eval <b>&</b>")
    assert out == path
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.title == "Eval <b>&</b>"  # escaped in the source, unescaped by the parser
    assert "<b>&</b>" not in text
    assert page.sections == ["summary", "metrics", "confusion-matrix", "spared-biopsies",
                             "calibration"]
    _assert_self_contained(text, page)
    assert len(page.srcs) == 3  # confusion matrix, ROC, reliability

    ref = clinical_report(y, s, threshold=0.4, groups=groups, n_bootstrap=200,
                          random_state=3)
    assert set(page.metric_rows) == set(ref["metrics"])
    for key, m in ref["metrics"].items():
        got = page.metric_rows[key]
        want = [m["value"], m["ci_low"], m["ci_high"]]
        for g, w in zip(got, want):
            assert (g is None) == (w is None)
            if w is not None:
                assert float(g) == pytest.approx(w, abs=0, rel=1e-12)
    # n, per class, exams, confusion counts and the Brier score are on the page
    cm = ref["confusion_matrix"]
    for label, value in [("Held-out samples", len(y)), ("Actionable (positive)", y.sum()),
                         ("Benign (negative)", len(y) - y.sum()),
                         ("Exams (groups)", len(set(groups))),
                         ("Exams with an actionable sample", len(set(groups[y == 1])))]:
        assert re.search(rf"{re.escape(label)}</td><td class=\"num\" data-value=\"{value}\"",
                         text), label
    cm_cells = re.search(r'<table class="cm">(.*?)</table>', text).group(1)
    vals = [int(v) for v in re.findall(r'data-value="(\d+)"', cm_cells)]
    assert vals == [cm["tn"], cm["fp"], cm["tn"] + cm["fp"], cm["fn"], cm["tp"],
                    cm["fn"] + cm["tp"]]
    brier = re.search(r"Brier score</th><td class=\"num\" data-value=\"([^\"]+)\"", text)
    assert float(brier.group(1)) == pytest.approx(brier_score_loss(y, s))
    assert "resamples of whole exams (20 exams" in text


def test_report_examples_are_the_most_confident(tmp_path):
    y, s, groups = _data(30, seed=1)
    rois = _rois(30)
    text = render_html_report(y_true=y, scores=s, threshold=0.4, groups=groups, rois=rois,
                              n_bootstrap=0, n_examples=2)
    page = Page(text)
    assert "examples" in page.sections
    _assert_self_contained(text, page)
    pred = s >= 0.4
    cats = {"True positives": (y == 1) & pred, "False positives": (y == 0) & pred,
            "False negatives": (y == 1) & ~pred, "True negatives": (y == 0) & ~pred}
    n_imgs = sum(min(2, int(m.sum())) for m in cats.values())
    assert len(page.srcs) == 3 + n_imgs
    heads = [h for h in page.h3 if "in total" in h]
    assert [h.split(" (")[0] for h in heads] == list(cats)
    # the true positive shown first is the highest-scoring one, the true negative the lowest
    shown = re.findall(r"<td>(True positives|True negatives)</td><td>(roi-\d+)</td>", text)
    tp_first = next(r for c, r in shown if c == "True positives")
    tn_first = next(r for c, r in shown if c == "True negatives")
    tp_idx = np.flatnonzero(cats["True positives"])
    tn_idx = np.flatnonzero(cats["True negatives"])
    assert tp_first == f"roi-{tp_idx[np.argmax(s[tp_idx])]}"
    assert tn_first == f"roi-{tn_idx[np.argmin(s[tn_idx])]}"


def test_report_without_groups_says_sample_bootstrap_and_extra_tables(tmp_path):
    import pandas as pd

    y, s, _ = _data(20)
    text = render_html_report(
        y_true=y, scores=s, threshold=0.5, n_bootstrap=50,
        extra_tables={"Params": {"K": 15, "note": "<i>", "<td onclick=x>": 1},
                      "Frame": pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}),
                      "Rows": [{"metric": "auc", "mean": 0.7}]},
    )
    page = Page(text)
    assert page.sections[-3:] == ["extra-0", "extra-1", "extra-2"]
    assert "individual samples" in text and "not given" in text
    assert "&lt;i&gt;" in text and "<i>" not in text
    assert "<td>&lt;td onclick=x&gt;</td>" in text and "<td onclick" not in text
    with pytest.raises(TypeError, match="extra_tables"):
        render_html_report(y_true=y, scores=s, threshold=0.5, n_bootstrap=0,
                           extra_tables={"bad": 3})


def test_report_validates_input_and_refuses_overwrite(tmp_path):
    y, s, groups = _data(20)
    path = tmp_path / "r.html"
    write_html_report(path, y_true=y, scores=s, threshold=0.4, n_bootstrap=0)
    with pytest.raises(FileExistsError):
        write_html_report(path, y_true=y, scores=s, threshold=0.4, n_bootstrap=0)
    write_html_report(path, y_true=y, scores=s, threshold=0.3, n_bootstrap=0, overwrite=True)
    assert "P(actionable) &ge; 0.300" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary left
    with pytest.raises(ValueError, match="probabilities"):
        render_html_report(y_true=y, scores=s * 3, threshold=0.4, n_bootstrap=0)
    rep = clinical_report(y, s, threshold=0.4, n_bootstrap=0)
    with pytest.raises(ValueError, match="given report"):
        render_html_report(y_true=y, scores=s, threshold=0.5, report=rep)
    with pytest.raises(ValueError):
        render_html_report(y_true=y, scores=s[:-1], threshold=0.4, n_bootstrap=0)


def test_report_path_that_is_a_folder_is_named_as_such(tmp_path):
    y, s, _ = _data(20)
    for overwrite in (False, True):
        with pytest.raises(IsADirectoryError, match="is a folder; give the report's file"):
            write_html_report(tmp_path, y_true=y, scores=s, threshold=0.4, n_bootstrap=0,
                              overwrite=overwrite)


def test_string_labels_need_their_pos_label():
    y, s, groups = _data(20)
    words = np.where(y == 1, "actionable", "benign")
    # with the default pos_label=1 every actionable count would silently be 0
    with pytest.raises(ValueError, match=r"pos_label=1 is not one of the labels of y_true "
                                         r"\['actionable', 'benign'\]"):
        render_html_report(y_true=words, scores=s, threshold=0.4, n_bootstrap=0)
    text = render_html_report(y_true=words, scores=s, threshold=0.4, groups=groups,
                              n_bootstrap=0, pos_label="actionable")
    expected = render_html_report(y_true=y, scores=s, threshold=0.4, groups=groups,
                                  n_bootstrap=0)
    metrics = Page(text).metric_rows
    assert metrics == Page(expected).metric_rows
    assert metrics["sensitivity"][0] is not None


def test_protocol_report_uses_the_result_report_and_tables(tmp_path):
    y, s, groups = _data(40)
    test = np.arange(0, 40, 2)
    rep = clinical_report(y[test], s[test], threshold=0.4, groups=groups[test],
                          n_bootstrap=100, random_state=0)
    nested = {"n_outer": 4, "n_inner": 5,
              "roc_auc": {"folds": [0.6, 0.7, 0.8, 0.7], "mean": 0.7, "std": 0.07}}
    res = ProtocolResult(best_params={"classify__threshold": 0.4}, report=rep,
                         y_test=y[test], y_score=s[test], test_index=test, threshold=0.4,
                         nested=nested, timings={"grid_search": 1.5})
    rois = _rois(40)
    path = write_protocol_report(tmp_path / "p.html", res, groups=groups, rois=rois,
                                 other_results={"baseline": res})
    text = path.read_text()
    page = Page(text)
    _assert_self_contained(text, page)
    assert page.metric_rows["sensitivity"][0] == repr(rep["metrics"]["sensitivity"]["value"])
    assert "Nested cross-validation (4 outer x 5 inner grouped folds)" in text
    assert "classify__threshold" in text and "grid_search" in text
    assert "baseline (AUC" not in text  # legend text lives in the PNG, not in the HTML
    assert f"Exams (groups)</td><td class=\"num\" data-value=\"{len(set(groups[test]))}\"" in text
    # only held-out ROIs are shown
    ids = set(re.findall(r"<td>(roi-\d+)</td>", text))
    assert ids and ids <= {f"roi-{i}" for i in test}


def test_report_with_a_single_class_still_renders():
    y = np.zeros(10, int)
    s = np.linspace(0.05, 0.9, 10)
    text = render_html_report(y_true=y, scores=s, threshold=0.4, rois=_rois(10),
                              n_bootstrap=20)
    page = Page(text)
    assert "single class" in text and "examples" in page.sections
    assert page.metric_rows["sensitivity"][0] is None  # undefined, shown as n/a


def test_calibration_note_follows_the_scores():
    y, s, _ = _data(20)
    calibrated = render_html_report(y_true=y, scores=s, threshold=0.2, n_bootstrap=0,
                                    calibrated=True)
    assert "reads as an estimated risk of 20 %" in calibrated
    raw = render_html_report(y_true=y, scores=s, threshold=0.4, n_bootstrap=0,
                             calibrated=False)
    assert "They are not calibrated, it is not a 40 % risk" in raw


class _Segment:
    """Stands for a fitted pipeline's segment step: marks one calcification per ROI."""

    calls = 0

    def transform(self, rois):
        _Segment.calls += len(rois)
        out = []
        for r in rois:
            lab = np.zeros(r.shape, np.int32)
            lab[5:8, 5:8] = 1
            out.append(r.replace(calcifications=lab))
        return out


def test_protocol_report_segments_the_shown_rois_of_a_calibrated_model(tmp_path):
    from types import SimpleNamespace

    y, s, groups = _data(40)
    test = np.arange(1, 40, 2)
    rep = clinical_report(y[test], s[test], threshold=0.4, n_bootstrap=0)
    fitted = SimpleNamespace(named_steps={"segment": _Segment()})
    model = SimpleNamespace(calibrated_=SimpleNamespace(
        calibrated_classifiers_=[SimpleNamespace(estimator=fitted)]))
    res = ProtocolResult(best_params={}, report=rep, y_test=y[test], y_score=s[test],
                         test_index=test, threshold=0.4,
                         search=SimpleNamespace(best_estimator_=model))
    rng = np.random.default_rng(0)
    raw_rois = [ROI(rng.random((20, 20)), spacing=0.1, meta={"roi_id": f"raw-{i}"})
                for i in range(40)]
    _Segment.calls = 0
    text = write_protocol_report(tmp_path / "c.html", res, rois=raw_rois,
                                 n_examples=1).read_text()
    assert 0 < _Segment.calls <= 4  # only the shown ROIs, once each
    assert "calibrated on held-out folds" in text
    assert len(re.findall(r"<td>raw-\d+</td>", text)) == _Segment.calls
