r"""An interactive schedule explorer that works in a static web page.

Sliders for the budget :math:`N`, the upper bound :math:`U` and the infimum
:math:`\eta_{inf}` redraw the learning rate of P, C, E, H, EH and WSD against the epoch, with
the asymptote of HyperbolicLR,

.. math::

    \eta(n) = \eta_{init} + (\eta_{init} - \eta_{inf})\,\Bigl[1 - \frac{n}{U} - h(0; N, U)\Bigr],

the image of the hyperbola's asymptote :math:`h = 1 - n/U` under the schedule's affine map.
Every curve is computed here, in Python, by the registry's schedulers (one plotly frame per
combination of slider values); the page's only script picks the frame that the three sliders
name. Nothing is fetched: :func:`explorer_html` embeds plotly.js in the page.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from collections.abc import Sequence
from numbers import Real

from . import require

require(("plotly", "matplotlib", "seaborn"), "book")

import matplotlib.pyplot as plt  # noqa: E402 (after the extra check)
import numpy as np  # noqa: E402 (after the extra check)
import plotly.graph_objects as go  # noqa: E402 (after the extra check)
import torch  # noqa: E402 (after the extra check)

from ..registry import make_scheduler  # noqa: E402 (after the extra check)
from ..schedules import _is_int, hyperbola  # noqa: E402 (after the extra check)
from .plotting import SCHEDULER_COLORS  # noqa: E402 (after the extra check)

__all__ = [
    "EXPLORER_CODES",
    "explorer_bundle",
    "explorer_html",
    "lr_trajectory",
    "schedule_explorer",
    "static_png",
]

#: The schedules the explorer draws, in legend order.
EXPLORER_CODES: tuple[str, ...] = ("P", "C", "E", "H", "EH", "WSD")

# The registry setting that holds each schedule's floor; P and E have none.
_INFIMUM_SETTING = {"C": "eta_min", "H": "infimum_lr", "EH": "infimum_lr", "WSD": "infimum_lr"}
_HYPERBOLIC = {"H", "EH"}
_SLIDER_NAMES = ("N", "U", "infimum")


def lr_trajectory(code: str, epochs: int, *, init_lr: float = 1e-2, **settings) -> np.ndarray:
    """The learning rate the optimizer holds after ``n = 0, 1, ..., epochs`` scheduler steps.

    The scheduler is the registry's ``code`` for a budget of ``epochs``, with ``settings``
    overriding its defaults, stepped once per epoch as the paper does.
    """
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=init_lr)
    scheduler = make_scheduler(code, optimizer, epochs=epochs, **settings)
    held = []
    for _ in range(epochs + 1):
        held.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(held)


def _settings(code: str, upper_bound: float, infimum_lr: float) -> dict[str, float]:
    settings: dict[str, float] = {}
    if code in _INFIMUM_SETTING:
        settings[_INFIMUM_SETTING[code]] = infimum_lr
    if code in _HYPERBOLIC:
        settings["upper_bound"] = upper_bound
    return settings


def _asymptote(budget: int, upper_bound: float, infimum_lr: float, init_lr: float) -> np.ndarray:
    epochs = np.arange(budget + 1)
    shift = 1.0 - epochs / upper_bound - hyperbola(0.0, budget, upper_bound)
    return init_lr + (init_lr - infimum_lr) * shift


def _check_grid(
    budgets: Sequence[int], upper_bounds: Sequence[float], infima: Sequence[float], init_lr: float
) -> None:
    if not isinstance(init_lr, Real) or not 0 < init_lr < math.inf:
        raise ValueError(f"init_lr must be a positive finite number, got {init_lr!r}")
    if not budgets or not all(_is_int(n) and n >= 2 for n in budgets):
        raise ValueError(f"budgets must be a non-empty list of integers >= 2, got {budgets!r}")
    if not upper_bounds or not all(isinstance(u, Real) for u in upper_bounds):
        raise ValueError(f"upper_bounds must be a non-empty list of numbers, got {upper_bounds!r}")
    if min(upper_bounds) < max(budgets):
        raise ValueError(
            f"upper_bounds must all be >= the largest budget ({max(budgets)}), since "
            f"HyperbolicLR needs U >= N; got {upper_bounds!r}"
        )
    if not infima or not all(isinstance(i, Real) and 0 < i < init_lr for i in infima):
        raise ValueError(
            f"infima must be a non-empty list of numbers in (0, init_lr={init_lr}), got {infima!r}"
        )


def _traces(
    codes: Sequence[str], budget: int, upper_bound: float, infimum_lr: float, init_lr: float
) -> list[go.Scatter]:
    epochs = np.arange(budget + 1)
    traces = [
        go.Scatter(
            x=epochs,
            y=lr_trajectory(
                code, budget, init_lr=init_lr, **_settings(code, upper_bound, infimum_lr)
            ),
            name=code,
            mode="lines",
            line={"color": SCHEDULER_COLORS[code], "width": 2},
        )
        for code in codes
    ]
    traces.append(
        go.Scatter(
            x=epochs,
            y=_asymptote(budget, upper_bound, infimum_lr, init_lr),
            name="asymptote of H",
            mode="lines",
            line={"color": SCHEDULER_COLORS["H"], "width": 1, "dash": "dash"},
        )
    )
    return traces


def _slider(name: str, label: str, values: Sequence, active: int, y: float) -> dict:
    return {
        "name": name,
        "active": active,
        "currentvalue": {"prefix": f"{label} = "},
        "steps": [
            {"label": f"{value:g}", "value": str(index), "method": "skip", "args": []}
            for index, value in enumerate(values)
        ],
        "x": 0.0,
        "len": 1.0,
        "y": y,
        "yanchor": "top",
        "pad": {"t": 10, "b": 0},
    }


def schedule_explorer(
    budgets: Sequence[int] = (25, 50, 100, 150, 200, 250),
    upper_bounds: Sequence[float] = (250, 300, 400, 600, 1000),
    infima: Sequence[float] = (1e-6, 1e-5, 1e-4, 1e-3),
    *,
    codes: Sequence[str] = EXPLORER_CODES,
    init_lr: float = 1e-2,
    initial: tuple[int, int, int] | None = None,
) -> go.Figure:
    """A plotly figure with one frame per (budget, upper bound, infimum) and three sliders.

    Frame ``"i-j-k"`` holds the curves for ``budgets[i]``, ``upper_bounds[j]`` and
    ``infima[k]``; ``initial`` gives the indices shown first (by default the middle budget, the
    smallest upper bound and infimum). The sliders only name a frame:
    :func:`explorer_html` adds the few lines of script that show it.

    Raises:
        ValueError: naming the argument, for an empty grid, a budget that is not an integer
            >= 2, an upper bound below the largest budget, an infimum outside ``(0, init_lr)``,
            an unknown code or an ``initial`` index outside the grid.
    """
    _check_grid(budgets, upper_bounds, infima, init_lr)
    unknown = [code for code in codes if code not in SCHEDULER_COLORS]
    if not codes or unknown:
        raise ValueError(f"codes must be registry codes, got unknown {unknown or codes!r}")
    sizes = (len(budgets), len(upper_bounds), len(infima))
    if initial is None:
        initial = (len(budgets) // 2, 0, 0)
    if len(initial) != len(sizes) or not all(
        _is_int(i) and 0 <= i < s for i, s in zip(initial, sizes, strict=True)
    ):
        raise ValueError(f"initial must be 3 indices into the grid of sizes {sizes}, got {initial}")

    frames = [
        go.Frame(
            name=f"{i}-{j}-{k}",
            data=_traces(codes, budgets[i], upper_bounds[j], infima[k], init_lr),
        )
        for i, j, k in itertools.product(*(range(s) for s in sizes))
    ]
    shown = frames[np.ravel_multi_index(initial, sizes)]
    fig = go.Figure(data=shown.data, frames=frames)
    low = math.log10(min(infima)) - 0.5
    fig.update_layout(
        height=700,
        margin={"l": 60, "r": 20, "t": 40, "b": 20},
        xaxis={"title": "epoch n", "range": [0, max(budgets)]},
        yaxis={"title": "learning rate", "type": "log", "range": [low, math.log10(init_lr) + 0.3]},
        legend={"orientation": "h", "y": 1.08, "x": 0},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.08,
                "yanchor": "bottom",
                "buttons": [
                    {"label": "log axis", "method": "relayout", "args": [{"yaxis.type": "log"}]},
                    {
                        "label": "linear axis",
                        "method": "relayout",
                        "args": [{"yaxis.type": "linear", "yaxis.autorange": True}],
                    },
                ],
            }
        ],
        sliders=[
            _slider("N", "budget N (epochs)", budgets, initial[0], 0.36),
            _slider("U", "upper bound U", upper_bounds, initial[1], 0.22),
            _slider("infimum", "infimum η_inf", infima, initial[2], 0.08),
        ],
    )
    fig.update_yaxes(domain=[0.5, 1.0])
    return fig


# Shows the frame that the three sliders name. The curves themselves are data in the figure.
_SLIDER_SCRIPT = """
var plot = document.getElementById('{plot_id}');
var names = NAMES;
var chosen = plot.layout.sliders.map(function (slider) { return slider.active || 0; });
plot.on('plotly_sliderchange', function (event) {
  chosen[names.indexOf(event.slider.name)] = Number(event.step.value);
  Plotly.animate(plot, [chosen.join('-')], {
    mode: 'immediate', frame: {duration: 0, redraw: true}, transition: {duration: 0}
  });
});
""".replace("NAMES", json.dumps(list(_SLIDER_NAMES)))


def explorer_html(fig: go.Figure, *, div_id: str = "schedule-explorer") -> str:
    """The figure as an HTML fragment with plotly.js inline: no CDN, no kernel needed."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        include_mathjax=False,
        div_id=div_id,
        auto_play=False,
        post_script=_SLIDER_SCRIPT,
        # No mode bar: its zoom tools would sit on the axis buttons, and the sliders are the point.
        config={"displayModeBar": False, "responsive": True},
    )


def static_png(fig: go.Figure) -> bytes:
    """The curves the figure shows first, drawn by matplotlib as a PNG.

    What a reader without JavaScript gets: the PDF of the book, or a notebook viewer.
    """
    static, ax = plt.subplots(figsize=(7.0, 4.2))
    for trace in fig.data:
        ax.plot(
            trace.x,
            trace.y,
            color=trace.line.color,
            ls="--" if trace.line.dash == "dash" else "-",
            lw=trace.line.width,
            label=trace.name,
        )
    ax.set(xlabel="epoch n", ylabel="learning rate", yscale="log")
    ax.set_ylim(*(10.0**bound for bound in fig.layout.yaxis.range))
    shown = ", ".join(
        f"{s.currentvalue.prefix}{s.steps[s.active].label}" for s in fig.layout.sliders
    )
    ax.set_title(shown, fontsize="small")
    ax.legend(ncol=4, fontsize="small", loc="lower left")
    static.tight_layout()
    buffer = io.BytesIO()
    static.savefig(buffer, format="png", dpi=110)
    plt.close(static)
    return buffer.getvalue()


def explorer_bundle(fig: go.Figure) -> dict[str, str]:
    """A MIME bundle for ``IPython.display.display(..., raw=True)``: the interactive HTML for
    the web book, and :func:`static_png` for the PDF and viewers without JavaScript."""
    return {
        "text/html": explorer_html(fig),
        "image/png": base64.b64encode(static_png(fig)).decode("ascii"),
    }
