"""``python -m stentrans.cli``: the same as the ``stentrans`` command."""

import sys

from . import main

sys.exit(main())
