"""``python -m stentrans``: the same as the ``stentrans`` command."""

import sys

from .cli import main

sys.exit(main())
