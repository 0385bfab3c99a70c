"""``python -m harness.modes.bisect step RUN_DIR``: what ``git bisect run`` calls."""

import sys

from harness.modes.bisect.step import step_main

raise SystemExit(step_main(sys.argv[1:]))
