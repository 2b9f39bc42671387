"""``python -m derisk.cli``: the same as the ``derisk`` command."""

import sys

from derisk.cli import main

sys.exit(main())
