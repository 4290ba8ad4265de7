"""Every result of Marathe et al. on any cohort: nested CV with the paper's comparisons,
Figure 6, the supplementary threshold table, named feature importances and the biopsies
avoided.

``skcalc demo`` and ``skcalc evaluate --paper`` are built on these functions; see
:mod:`skcalc._paper` for how the held-out split is reused as outer fold 0.
"""

# The public names are _paper's __all__ (listed once, there).
from ._paper import *  # noqa: F403
from ._paper import __all__  # noqa: F401
