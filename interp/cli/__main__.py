"""`python -m interp.cli`: the console script without its entry point (torchrun uses it)."""

import sys

from interp.cli import main

sys.exit(main())
