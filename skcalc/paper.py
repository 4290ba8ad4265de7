"""Every result of Marathe et al. on any cohort: nested CV with the paper's comparisons,
Figure 6, the supplementary threshold table, named feature importances and the biopsies
avoided.

``skcalc demo`` and ``skcalc evaluate --paper`` are built on these functions; see
:mod:`skcalc._paper` for how the held-out split is reused as outer fold 0.
"""

from ._paper import (
    DEEP_DEFAULTS,
    PaperComparison,
    biopsies_avoided,
    format_nested_table,
    format_threshold_table,
    metrics_at_threshold,
    outer_folds,
    run_paper_analysis,
    run_paper_comparison,
    threshold_table,
    write_paper_outputs,
)

__all__ = [
    "DEEP_DEFAULTS",
    "PaperComparison",
    "biopsies_avoided",
    "format_nested_table",
    "format_threshold_table",
    "metrics_at_threshold",
    "outer_folds",
    "run_paper_analysis",
    "run_paper_comparison",
    "threshold_table",
    "write_paper_outputs",
]
