"""hyperlr.lab: the book's laboratory (data, models, training, results store, sweeps, tuning,
analysis, plotting, the schedule explorer).

The schedulers in :mod:`hyperlr` need only torch and numpy; this subpackage needs the
``lab`` extra (``pip install 'hyperlr[lab]'``), and its plotting and explorer modules the
``book`` extra. Importing it without them fails at once with an error that names the extra to
install, rather than deep inside a training run.
"""

from __future__ import annotations

import importlib.util

# The distributions each part of the laboratory imports, by their import names.
_LAB_REQUIREMENTS = ("joblib", "optuna", "pandas", "schedulefree", "scipy", "torchvision", "tqdm")


def require(modules: tuple[str, ...], extra: str) -> None:
    """Raise an ImportError naming ``extra`` if any of ``modules`` cannot be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"hyperlr.lab needs the '{extra}' extra (missing: {', '.join(missing)}); "
            f"install it with: pip install 'hyperlr[{extra}]'"
        )


require(_LAB_REQUIREMENTS, "lab")
