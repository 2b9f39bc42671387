"""``python -m derisk.cli``: the same as the ``derisk`` command."""

import sys

from derisk.console import main

sys.exit(main())
