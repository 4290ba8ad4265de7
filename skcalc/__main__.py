"""``python -m skcalc``: the same as the ``skcalc`` command."""

import sys

from .cli import main

sys.exit(main())
