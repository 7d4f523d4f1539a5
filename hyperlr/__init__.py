"""hyperlr: epoch-insensitive learning-rate schedules for PyTorch, and the book's machinery.

Importing the package has no side effects: no downloads, no seeding, no plotting style.
"""

from .registry import SCHEDULER_CODES, is_per_batch, make_scheduler
from .schedulers import ExpHyperbolicLR, HyperbolicLR
from .schedules import exp_hyperbolic_lr, hyperbolic_lr
from .wsd import WarmupStableDecayLR

__all__ = [
    "SCHEDULER_CODES",
    "ExpHyperbolicLR",
    "HyperbolicLR",
    "WarmupStableDecayLR",
    "exp_hyperbolic_lr",
    "hyperbolic_lr",
    "is_per_batch",
    "make_scheduler",
]
# The single source of the version: pyproject.toml reads it (dynamic = ["version"]); a release
# tag is "v" + this string, and CHANGELOG.md has a section for it.
__version__ = "0.1.0"
