"""skcalc: scikit-learn-compatible assessment of amorphous breast calcifications.

Implements Marathe et al., "Automated Quantitative Assessment of Amorphous Calcifications"
end to end, with the HDoGReg segmentation of Marasinou et al.
"""

__version__ = "0.1.0.dev0"

from .exceptions import ROIValidationError, SkcalcWarning, UnreadableImageError
from .roi import ROI, check_roi

__all__ = [
    "ROI",
    "ROIValidationError",
    "SkcalcWarning",
    "UnreadableImageError",
    "__version__",
    "check_roi",
]
