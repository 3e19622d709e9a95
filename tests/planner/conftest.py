"""The planner tests share :mod:`torchnet` (plain torch networks built from stage text, and the probes that
measure what torch keeps in memory); this directory goes on ``sys.path`` so they can import it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
