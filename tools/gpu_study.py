"""One GPU lease's command: check the device path, measure, train whole groups before a deadline.

See :mod:`hyperlr.lab.lease`. On the GPU machine, after ``tools/gpu_bundle.sh`` here:

    python3 tools/gpu_study.py --deadline 480 --out $OUT

A rerun with the same ``--out`` skips the runs already archived there.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperlr.lab.lease import main  # noqa: E402

if __name__ == "__main__":
    main()
