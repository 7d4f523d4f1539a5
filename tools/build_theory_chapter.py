"""Write chapters/10_what_theory_predicts_about_budgets.ipynb from the cells below (outputs
stripped). Run from the repository root; then `python tools/install_cells.py` adds the install
cell, and `ruff format` formats the notebook. Kept so that the chapter's source can be edited
and reviewed as one Python file."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
PATH = ROOT / "chapters" / "10_what_theory_predicts_about_budgets.ipynb"

CELLS: list[tuple[str, str, list[str]]] = []


def md(source: str) -> None:
    CELLS.append(("markdown", source.strip("\n"), []))


def code(source: str, *tags: str) -> None:
    CELLS.append(("code", source.strip("\n"), list(tags)))


md(r"""
(chap-theory)=
# What theory predicts about budgets

## Overview

The experiments of this book train small models for short budgets, so by themselves they say
little about larger runs. Theory can say more. For convex problems a closed-form bound on the
last iterate of SGD holds for any schedule {cite}`defazio2023optimal`, and it tracks real training
curves surprisingly well {cite}`schaipp2025surprising`; the noisy quadratic model
{cite}`zhang2019nqm` gives exact expected losses in milliseconds. Both can be tuned exactly, at
any budget, for every schedule of the registry. This chapter uses them to answer the paper's
practical question {cite}`kim2024hyperboliclr`: when does a learning rate tuned at a short budget
stay right at a long one, and is the advantage of HyperbolicLR (H) and ExpHyperbolicLR (EH) more
than an implicit lowering of their average rate as the budget grows, which a one-line
square-root rule gives any schedule?

In order:

1. the bound, and why a schedule of fixed shape needs a base rate $\gamma^* \propto T^{-1/2}$;
2. H at $N = U$ is linear decay and EH geometric decay; their average rates in closed form;
3. the transfer regret and the gap to the best schedule at 2x and 4x the tuning budget, for every
   schedule the book trains and for the square-root rule, in three models;
4. the role of the upper bound $U$, and of stepping per epoch or per optimizer step;
5. what the theory predicts for the book's own tasks.

Everything is computed by `hyperlr.theory` from the registry's own schedulers, the code the
experiments train with.
""")

code(
    r"""
tune_budget = 50  # epochs: the paper's tuning budget
budgets = [50, 100, 200]  # epochs: 1x, 2x and 4x the tuning budget
steps_per_epoch = 10  # optimizer steps per epoch in the models (they have no data set)
""",
    "parameters",
)

code(r"""
%matplotlib inline
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import sympy as sp
from IPython.display import Markdown, display
from myst_nb import glue

from hyperlr import exp_hyperbolic_lr, hyperbolic_lr
from hyperlr.lab import theory_summary
from hyperlr.lab.plotting import SCHEDULER_COLORS, set_style
from hyperlr.theory import (
    REFERENCE_LR,
    average_rate_ratio,
    convex_optimum,
    nqm_optimum,
    rescaled_rate,
    schedule_lrs,
    transfer,
)

# The laboratory imports tqdm.auto, which warns when ipywidgets is absent; no widgets here.
warnings.filterwarnings("ignore", message="IProgress not found")
set_style()
MODELS = {"convex": "convex bound", "easy": "NQM (easy)", "hard": "NQM (hard)"}
COLORS = {
    **SCHEDULER_COLORS,
    "C+sqrt": SCHEDULER_COLORS["C"],
    "L+sqrt": SCHEDULER_COLORS["L"],
    "WSD+sqrt": SCHEDULER_COLORS["WSD"],
}
budgets = sorted(budgets)
theory_summary.PAPER_BUDGETS = (tune_budget, *[b for b in budgets if b != tune_budget])
theory_summary.STEPS_PER_EPOCH = steps_per_epoch
""")

md(r"""
## The bound, and why fixed shapes need $\gamma^* \propto T^{-1/2}$

Run SGD, $x_{t+1} = x_t - \eta_t g_t$, for $T$ steps on a convex objective whose stochastic
gradients are bounded by $G$, from a point at distance $D$ of a minimiser. With the suffix sums
$S_k = \sum_{t \ge k} \eta_t$ and $Q_k = \sum_{t \ge k} \eta_t^2$, the last iterate satisfies
{cite}`defazio2023optimal`

$$
\mathbb E f(x_T) - f_* \le \frac{D^2}{2S_1} + \frac{G^2 Q_1}{2S_1}
+ \frac{G^2}{2}\sum_{k=1}^{T-1} \frac{\eta_k}{S_{k+1}}\,\frac{Q_k}{S_k}.
$$ (eq-theory-bound)

`convex_bound` evaluates it in $O(T)$ from cumulative sums. Write each rate as a base rate times
a shape, $\eta_t = \gamma s_t$. The first term scales as $1/\gamma$, the others as $\gamma$, so
the bound is $A/\gamma + B\gamma$, with $A = D^2/(2S_1)$ and $B$ the rest, both at $\gamma = 1$.
Its minimum is at

$$
\gamma^* = \sqrt{A/B}, \qquad \text{bound}^* = 2\sqrt{AB},
$$ (eq-theory-optimum)

a closed form with no search (`convex_optimum`). Now stretch a shape over a longer budget,
$s_t = f(t/T)$ for a fixed profile $f$ (cosine, linear decay, WSD with a fixed cooldown
fraction). Then $S_1 \approx T\int_0^1 f$, so $A \propto 1/T$; and $Q_1/S_1 \to
\int f^2/\int f$, while each term of the last sum is $\eta_k/S_{k+1}$ (of order $1/T$ times the
profile) times a ratio of order one, so $B$ tends to a constant (for a profile that does not
decay, like a constant rate, the last sum grows like $\ln T$). Hence

$$
\gamma^*(T) = \sqrt{A/B} \propto T^{-1/2}
$$

up to such logarithms: a rate tuned at $T_0$ is $\sqrt{k}$ times too large at $kT_0$. The cell
checks the minimisation with sympy and computes the exponent over three decades of $T$, the
schedules stepped once per step.
""")

code(
    r"""
gamma, A_sym, B_sym = sp.symbols("gamma A B", positive=True)
bound_expr = A_sym / gamma + B_sym * gamma
stationary = sp.solve(sp.diff(bound_expr, gamma), gamma)
assert stationary == [sp.sqrt(A_sym / B_sym)]
assert sp.simplify(bound_expr.subs(gamma, stationary[0]) - 2 * sp.sqrt(A_sym * B_sym)) == 0

steps = [100, 1_000, 10_000, 100_000]
fixed_shapes = {
    "C": lambda T: schedule_lrs("C", T),
    "L": lambda T: schedule_lrs("L", T),
    "WSD": lambda T: schedule_lrs("WSD", T),
    "N": lambda T: schedule_lrs("N", T),
}
scaling = pd.DataFrame(
    {
        name: [convex_optimum(make(T) / REFERENCE_LR).rate for T in steps]
        for name, make in fixed_shapes.items()
    },
    index=pd.Index(steps, name="steps T"),
)
slopes = {
    name: float(np.polyfit(np.log(steps), np.log(scaling[name]), 1)[0]) for name in scaling
}
for name, slope in slopes.items():
    glue(f"theory-slope-{name}", slope, display=False)
scaling.style.format("{:.3g}").set_caption("γ* of the convex bound (D = G = 1)")
""",
    "hide-input",
)

md(r"""
The fitted exponents are {glue:text}`theory-slope-C:.3f` for C,
{glue:text}`theory-slope-L:.3f` for linear decay to zero (L), {glue:text}`theory-slope-WSD:.3f`
for WSD and {glue:text}`theory-slope-N:.3f` for a constant rate (N), whose extra logarithm pulls
it below $-1/2$.

## H and EH at $N = U$, and their average rate

With $u = n/U$ and $x = N/U$, HyperbolicLR is
$\eta_H = \eta_{init} + (\eta_{init} - \eta_{inf})(h - h_0)$ with
$h = \sqrt{(x-u)(2-x-u)}$ and $h_0 = h(0) = \sqrt{x(2-x)}$ ({ref}`chap-derivation`); EH is
$\eta_{init}(\eta_{init}/\eta_{inf})^{h - h_0}$. At $x = 1$, $h = 1 - u$ and $h_0 = 1$, so H is
linear decay from $\eta_{init}$ to $\eta_{inf}$ and EH the geometric decay
$\eta_{init}^{1-u}\eta_{inf}^{u}$ between them. For $x < 1$ both stop early: H at
$\eta_{init} - (\eta_{init} - \eta_{inf})h_0$.

The average over the run follows from the area under the arc. Substituting $w = 1 - u$ and
$c = 1 - x$ turns it into the area under a hyperbola,

$$
\int_0^x h\,du = \int_c^1 \sqrt{w^2 - c^2}\,dw = \tfrac12\Bigl[h_0 - c^2 \ln\frac{1 + h_0}{c}\Bigr],
$$

so H's average rate, as a fraction of $\eta_{init}$ with $\rho = \eta_{inf}/\eta_{init}$, is

$$
\frac{\bar\eta_H}{\eta_{init}} = 1 - (1 - \rho)\Bigl(h_0
- \frac{h_0 - c^2\ln((1+h_0)/c)}{2x}\Bigr),
$$ (eq-theory-average)

which falls from 1 at $x \to 0$ to $(1 + \rho)/2$ at $x = 1$. EH's average,
$\frac1x\int_0^x \rho^{h_0 - h}\,du$, has no elementary form; `average_rate_ratio` integrates it
by quadrature. The cell derives all of this with sympy and checks it against `hyperlr`.
""")

code(
    r"""
u, x, w, c = sp.symbols("u x w c", positive=True)
eta_init, eta_inf = sp.symbols("eta_init eta_inf", positive=True)
h = sp.sqrt((x - u) * (2 - x - u))
h0 = h.subs(u, 0)
eta_H = eta_init + (eta_init - eta_inf) * (h - h0)
eta_EH = eta_init * (eta_init / eta_inf) ** (h - h0)

# At N = U: linear decay to the infimum, and geometric decay (v = 1 - u, the time left).
v = sp.Symbol("v", positive=True)
at_U = {x: 1, u: 1 - v}
assert sp.simplify(h.subs(at_U) - v) == 0
assert sp.simplify(eta_H.subs(at_U) - (eta_init + (eta_inf - eta_init) * (1 - v))) == 0
log_gap = sp.log(eta_EH.subs(at_U)) - sp.log(eta_init**v * eta_inf ** (1 - v))
assert sp.simplify(sp.expand_log(log_gap, force=True)) == 0

# The area under the arc, by the substitution w = 1 - u, c = 1 - x.
area = sp.integrate(sp.sqrt(w**2 - c**2), (w, c, 1))
closed = (sp.sqrt(1 - c**2) - c**2 * sp.log((1 + sp.sqrt(1 - c**2)) / c)) / 2
for value in (sp.Rational(1, 10), sp.Rational(1, 2), sp.Rational(4, 5)):
    assert abs(float(area.subs(c, value) - closed.subs(c, value))) < 1e-12
    numeric = sp.Integral(h.subs(x, 1 - value), (u, 0, 1 - value)).evalf()
    assert abs(float(numeric - closed.subs(c, value))) < 1e-10

# Against hyperlr's schedulers: the mean over a long budget (trapezoid rule).
rho = 1e-3
ratios = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
for kind, schedule in (("H", hyperbolic_lr), ("EH", exp_hyperbolic_lr)):
    N_long = 20_000
    for x_value, exact in zip(ratios, average_rate_ratio(ratios, kind, rho), strict=True):
        values = schedule(np.arange(N_long + 1), 1.0, rho, N_long, N_long / x_value)
        assert abs(np.trapezoid(values) / N_long / exact - 1) < 1e-5

xs = np.linspace(0.02, 1, 200)
avg_H = average_rate_ratio(xs, "H", rho)
avg_EH = average_rate_ratio(xs, "EH", rho)
for label, x_value in (("020", 0.2), ("080", 0.8)):
    glue(f"theory-avg-h-{label}", float(average_rate_ratio(x_value, "H", rho)), display=False)
    glue(f"theory-avg-eh-{label}", float(average_rate_ratio(x_value, "EH", rho)), display=False)
for kind in ("H", "EH"):
    fall = average_rate_ratio(0.2, kind, rho) / average_rate_ratio(0.8, kind, rho)
    glue(f"theory-avg-fall-{kind.lower()}", float(fall), display=False)
""",
    "hide-input",
)

md(r"""
With the paper's $U = 250$ and a floor of $10^{-3}$ times the base rate, going from $N = 50$
($x = 0.2$) to $N = 200$ ($x = 0.8$) lowers H's average rate from
{glue:text}`theory-avg-h-020:.3f` to {glue:text}`theory-avg-h-080:.3f` of $\eta_{init}$, and
EH's from {glue:text}`theory-avg-eh-020:.3f` to {glue:text}`theory-avg-eh-080:.3f`: factors of
{glue:text}`theory-avg-fall-h:.2f` and {glue:text}`theory-avg-fall-eh:.2f`. A fixed shape keeps
its average; the square-root rule lowers it by $\sqrt{4} = 2$ over the same quadrupling. Both
schedules therefore rescale themselves, by an amount set by $U$; whether that is the amount the
optimum asks for is a question about where in the run the rate is spent, which the next
sections answer by computing the optimum itself.
""")

code(
    r"""
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(xs, avg_H, color=SCHEDULER_COLORS["H"], label="H")
ax.plot(xs, avg_EH, color=SCHEDULER_COLORS["EH"], label="EH")
ax.plot(xs, np.sqrt(0.2 / xs) * average_rate_ratio(0.2, "H", rho), color="k", ls="--", lw=1,
        label=r"H's value at $x = 0.2$ times $\sqrt{0.2/x}$")
ax.axvspan(0.2, 0.8, color="0.9", zorder=0)
ax.set(xlabel="x = N / U", ylabel="average rate / initial rate", yscale="log")
ax.legend()
fig.tight_layout()
glue("fig-theory-average", fig, display=False)
plt.close(fig)
""",
    "hide-input",
)

md(r"""
```{glue:figure} fig-theory-average
:name: fig-theory-average

Average learning rate of H and EH over the run, as a fraction of the initial rate, against
$x = N/U$ ({eq}`eq-theory-average`; floor $10^{-3}$ of the initial rate). Dashed: what the
square-root rule would do to H's average from $x = 0.2$ on. Shaded: the paper's budgets 50 to
200 with $U = 250$.
```

## The optimal base rate against the budget

{numref}`fig-theory-gamma` shows $\gamma^*(T)$ for each schedule at the registry's defaults
(the paper's $U = 250$, floors $10^{-6}$ against a base rate of $10^{-3}$), stepped once per
epoch of {glue:text}`theory-steps-per-epoch` optimizer steps, in three models: the convex bound;
the noisy quadratic model in its noise-dominated regime ("easy": $d = 400$ coordinates with
curvatures $h_i = i^{-1}$, initial error $\propto i^{-1}$, gradient noise $\sigma^2 = 10^{-2}$),
where noise, not the distance to travel, limits the loss; and in its signal-limited regime
("hard": $h_i = i^{-1.5}$, flat initial error, $\sigma^2 = 10^{-4}$), where there is little noise
to average and much distance to cover. In the NQM the expected loss is computed exactly, and
the best rate is found numerically below the stability limit $2/h_{max} = 2$.
""")

code(
    r"""
glue("theory-steps-per-epoch", steps_per_epoch, display=False)
curve_budgets = [25, 50, 100, 150, 200, 250]
curve_schedules = ["N", "P", "C", "E", "H", "EH", "WSD", "SF"]
gamma_rows = []
for model in MODELS:
    for name in curve_schedules:
        for budget in curve_budgets:
            shape = schedule_lrs(name, budget, steps_per_epoch) / REFERENCE_LR
            if name == "SF":
                rate = (1 / np.sqrt(shape.size) if model == "convex"
                        else transfer(["SF"], model, tune_budget=budget, budgets=[budget],
                                      steps_per_epoch=steps_per_epoch).rows[0].optimal_rate)
            elif model == "convex":
                rate = convex_optimum(shape).rate
            else:
                rate = nqm_optimum(shape, model)[0]
            gamma_rows.append({"model": model, "scheduler": name, "budget": budget,
                               "rate": rate})
gamma_table = pd.DataFrame(gamma_rows)
gamma_slopes = (
    gamma_table.groupby(["model", "scheduler"])
    .apply(lambda g: np.polyfit(np.log(g["budget"]), np.log(g["rate"]), 1)[0],
           include_groups=False)
    .unstack("model")
    .reindex(curve_schedules)[list(MODELS)]
)
for model in MODELS:
    for name in curve_schedules:
        glue(f"theory-beta-{model}-{name}", float(gamma_slopes.loc[name, model]), display=False)

fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True)
for ax, model in zip(axes, MODELS, strict=True):
    for name in curve_schedules:
        rows = gamma_table[(gamma_table["model"] == model) & (gamma_table["scheduler"] == name)]
        ax.plot(rows["budget"], rows["rate"], "o-", color=COLORS[name], ms=3, label=name)
    ax.set(xscale="log", yscale="log", title=MODELS[model], xlabel="budget N (epochs)")
    reference = gamma_table[(gamma_table["model"] == model) & (gamma_table["scheduler"] == "C")]
    ax.plot(curve_budgets, reference["rate"].iloc[0] * (np.array(curve_budgets) / 25) ** -0.5,
            color="k", ls=":", lw=1, label=r"$\propto N^{-1/2}$")
axes[0].set_ylabel(r"optimal base rate $\gamma^*$")
axes[-1].legend(fontsize="small", ncol=2)
fig.tight_layout()
glue("fig-theory-gamma", fig, display=False)
plt.close(fig)
gamma_slopes.round(3)
""",
    "hide-input",
)

md(r"""
```{glue:figure} fig-theory-gamma
:name: fig-theory-gamma

Optimal base rate against the budget on log-log axes, per schedule at the registry's defaults,
in the convex bound (left) and in the easy (middle) and hard (right) noisy quadratic models.
Dotted: slope $-1/2$ through C's first point. The table above gives the fitted slopes.
```

In the convex bound the fixed-shape schedules sit on the $-1/2$ line (C
{glue:text}`theory-beta-convex-C:.2f`, WSD {glue:text}`theory-beta-convex-WSD:.2f`), as derived.
H ({glue:text}`theory-beta-convex-H:.2f`) and EH ({glue:text}`theory-beta-convex-EH:.2f`) move
far less, because they lower their own average rate as $N$ approaches $U$; E
({glue:text}`theory-beta-convex-E:.2f`) ignores the budget, so its best rate even rises: a
longer run spends more epochs at rates too small to matter. In the easy regime the fixed shapes
again sit near $-1/2$ (C {glue:text}`theory-beta-easy-C:.2f`), H's optimum moves little
({glue:text}`theory-beta-easy-H:.2f`) and EH's hardly at all
({glue:text}`theory-beta-easy-EH:.2f`). In the hard regime every schedule's best rate is the
stability limit at every budget (C {glue:text}`theory-beta-hard-C:.2f`): nothing to rescale.

## Transfer regret and the envelope

The paper's protocol, run exactly in each model (`hyperlr.theory.transfer`): at
{glue:text}`theory-tune-budget` epochs, each schedule's shape settings are searched on a grid of
the paper's search spaces (the polynomial's power, the floors from $10^{-7}$ to $10^{-4}$,
E's factor, H's and EH's $U$ from 200 to 400) with the best base rate for each (closed form in
the bound, numeric in the NQM); the best is kept. At every budget we report:

* the **regret**: loss with the kept settings over the loss when everything is retuned at that
  budget, minus one;
* the **gap to the envelope**: loss with the kept settings over the best retuned loss of *any*
  schedule at that budget, minus one. A schedule can transfer perfectly and still be worse
  everywhere.

"+sqrt" keeps C's, L's or WSD's tuned settings and multiplies the rate by
$\sqrt{T_0/T}$. **Schedule-free SGD** (SF) is modelled as schedule-free SGD
{cite}`defazio2024schedulefree` with interpolation $\beta = 0.9$ and uniform averaging
$c_t = 1/(t+1)$, tuned like the others. In the NQM its averaged iterate's expected loss is
exact (the pair of iterates evolves linearly, so its second moments do). In the convex model we
use its bound for the averaged iterate, $D^2/(2\gamma T) + \gamma G^2/2$, whose optimum also
falls as $T^{-1/2}$; because it bounds a different iterate, SF's regret is comparable with the
others' but its bound value is not, and it is left out of the convex envelope (gap: not
defined). Schedule-free AdamW, which the book trains, is not covered by either model.
""")

code(
    r"""
glue("theory-tune-budget", tune_budget, display=False)
results = {model: theory_summary.paper_setting(model, steps_per_epoch) for model in MODELS}
table = pd.DataFrame(
    [
        {"model": model, "schedule": row.schedule, "budget": row.budget, "regret": row.regret,
         "gap": row.gap}
        for model, result in results.items()
        for row in result.rows
    ]
)
order = list(theory_summary.SCHEDULES)
wide = table.pivot_table(index="schedule", columns=["model", "budget"], values=["regret", "gap"],
                         dropna=False).reindex(order)
long_budgets = [b for b in budgets if b != tune_budget]
for model in MODELS:
    for name in order:
        for budget in long_budgets:
            row = results[model].row(name, budget)
            k = budget // tune_budget
            key = name.replace("+sqrt", "-sqrt")
            glue(f"theory-regret-{model}-{key}-{k}x", row.regret, display=False)
            glue(f"theory-gap-{model}-{key}-{k}x", row.gap, display=False)
regret_table = (
    wide["regret"][[(m, b) for m in MODELS for b in long_budgets]]
    .rename(columns=lambda b: f"{b // tune_budget}x", level=1)
)
display(Markdown("**Transfer regret** (loss with the short-tuned settings / retuned loss − 1)"))
regret_table.style.format("{:.1%}")
""",
    "hide-input",
)

code(
    r"""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=False)
width = 0.38
for ax, model in zip(axes, MODELS, strict=True):
    positions = np.arange(len(order))
    for offset, budget, alpha in ((-width / 2, long_budgets[0], 0.55), (width / 2,
                                                                         long_budgets[-1], 1.0)):
        values = [results[model].row(name, budget).regret for name in order]
        ax.bar(positions + offset, values, width, color=[COLORS[n] for n in order], alpha=alpha,
               hatch=None if alpha == 1.0 else "//", edgecolor="white",
               label=f"{budget // tune_budget}x")
    ax.set_xticks(positions, order, rotation=60, fontsize="small")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_title(MODELS[model])
axes[0].set_ylabel("transfer regret")
axes[0].legend(title="budget / tuning budget")
fig.tight_layout()
glue("fig-theory-regret", fig, display=False)
plt.close(fig)
""",
    "hide-input",
)

md(r"""
```{glue:figure} fig-theory-regret
:name: fig-theory-regret

Transfer regret at 2x (hatched, light) and 4x (solid) the tuning budget, per schedule, in the
three models. The vertical axis is linear below 1 % and logarithmic above.
```
""")

code(
    r"""
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharex=True)
for ax, model in zip(axes, MODELS, strict=True):
    for name in order:
        rows = [results[model].row(name, b) for b in budgets]
        gaps = [r.gap for r in rows]
        if np.all(np.isnan(gaps)):
            continue
        ax.plot(budgets, gaps, "o-" if "+" not in name else "s--", color=COLORS[name],
                ms=4, label=name)
    ax.set(xscale="log", title=MODELS[model], xlabel="budget N (epochs)")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xticks(budgets, [str(b) for b in budgets])
axes[0].set_ylabel("gap to the envelope")
axes[-1].legend(fontsize="small", ncol=2)
fig.tight_layout()
glue("fig-theory-gap", fig, display=False)
plt.close(fig)
envelope_winner = {  # SF's convex bound is for another iterate: not in that envelope
    model: min((n for n in order if not (model == "convex" and n == "SF")),
               key=lambda n: results[model].row(n, budgets[-1]).retuned_loss)
    for model in MODELS
}
for model, name in envelope_winner.items():
    glue(f"theory-envelope-{model}", name, display=False)
display(Markdown("**Gap to the envelope** (loss / best retuned loss of any schedule − 1)"))
wide["gap"][[(m, b) for m in MODELS for b in budgets]].style.format("{:.1%}", na_rep="–")
""",
    "hide-input",
)

md(r"""
```{glue:figure} fig-theory-gap
:name: fig-theory-gap

Gap to the envelope (the best retuned schedule at each budget) of each schedule with its
settings tuned at the first budget. Dashed with squares: the square-root rule. SF is not shown
in the convex model (its bound is for another iterate).
```

What the three models say:

* **Convex bound.** Fixed shapes lose what the derivation predicts: C's regret is
  {glue:text}`theory-regret-convex-C-2x:.1%` at 2x and {glue:text}`theory-regret-convex-C-4x:.1%`
  at 4x, WSD's {glue:text}`theory-regret-convex-WSD-4x:.1%` and SF's
  {glue:text}`theory-regret-convex-SF-4x:.1%` at 4x. H transfers almost perfectly
  ({glue:text}`theory-regret-convex-H-4x:.1%` at 4x); EH less well
  ({glue:text}`theory-regret-convex-EH-4x:.1%`). The square-root rule removes nearly all of the
  regret of the fixed shapes (C+sqrt {glue:text}`theory-regret-convex-C-sqrt-4x:.1%`,
  L+sqrt {glue:text}`theory-regret-convex-L-sqrt-4x:.1%`), and with linear decay it is as
  close to the envelope as H ({glue:text}`theory-gap-convex-L-sqrt-4x:.1%` against
  {glue:text}`theory-gap-convex-H-4x:.1%` at 4x; the best retuned schedule there is
  {glue:text}`theory-envelope-convex`).
* **NQM, easy.** The same picture: C {glue:text}`theory-regret-easy-C-4x:.1%`,
  H {glue:text}`theory-regret-easy-H-4x:.1%`, EH {glue:text}`theory-regret-easy-EH-4x:.1%` at 4x;
  L+sqrt {glue:text}`theory-regret-easy-L-sqrt-4x:.1%`, with a gap of
  {glue:text}`theory-gap-easy-L-sqrt-4x:.1%` against H's {glue:text}`theory-gap-easy-H-4x:.1%`.
* **NQM, hard.** The best rate does not move, so every schedule transfers (C
  {glue:text}`theory-regret-hard-C-4x:.1%`, H {glue:text}`theory-regret-hard-H-4x:.1%`), and the
  square-root rule is harmful (C+sqrt {glue:text}`theory-regret-hard-C-sqrt-4x:.1%`). What
  separates the schedules is the envelope: the best is {glue:text}`theory-envelope-hard`, a long
  plateau at the stability limit with a short cooldown, and H is
  {glue:text}`theory-gap-hard-H-4x:.1%` above it at 4x, EH {glue:text}`theory-gap-hard-EH-4x:.1%`.

## The role of $U$, and of the stepping

H's and EH's self-rescaling comes from $x = N/U$ growing with the budget. The table holds the
infimum at the paper's $10^{-6}$ and $U$ at the longest budget (200), at the paper's
$1.25\times$ the longest budget (250) and at a large value (2000), and compares stepping once
per epoch (as the paper and the registry do) with stepping once per optimizer step.
""")

code(
    r"""
u_rows = []
longest = budgets[-1]
for model in MODELS:
    for label, upper in (("U = longest", longest), ("U = 1.25 x longest", round(1.25 * longest)),
                         ("U = 10 x longest", 10 * longest)):
        fixed = {name: {"upper_bound": upper, "infimum_lr": 1e-6} for name in ("H", "EH")}
        result = transfer(["H", "EH"], model, tune_budget=tune_budget, budgets=budgets,
                          steps_per_epoch=steps_per_epoch, fixed=fixed,
                          grids={"H": {}, "EH": {}})
        for name in ("H", "EH"):
            row = result.row(name, longest)
            u_rows.append({"model": MODELS[model], "U": label, "schedule": name,
                           "regret at 4x": row.regret, "exponent": result.exponents[name]})
            key = f"theory-u-{model}-{name}-{upper}"
            glue(f"{key}-regret", row.regret, display=False)
            glue(f"{key}-beta", result.exponents[name], display=False)
u_table = pd.DataFrame(u_rows).pivot_table(index=["model", "U"], columns="schedule",
                                           values=["regret at 4x", "exponent"], sort=False)
u_table.style.format("{:.3f}")
""",
    "hide-input",
)

code(
    r"""
step_rows = []
for model in ("convex", "easy"):
    for per_step in (False, True):
        result = transfer(["C", "H"], model, tune_budget=tune_budget, budgets=budgets,
                          steps_per_epoch=steps_per_epoch, per_step=per_step,
                          grids={"C": {}, "H": {}},
                          fixed={"H": {"upper_bound": 250}})
        for name in ("C", "H"):
            row = result.row(name, longest)
            mode = "per step" if per_step else "per epoch"
            step_rows.append({"model": MODELS[model], "stepping": mode, "schedule": name,
                              "regret at 4x": row.regret, "loss at 4x": row.loss})
            glue(f"theory-step-{model}-{name}-{mode.replace(' ', '-')}", row.regret,
                 display=False)
step_table = pd.DataFrame(step_rows).pivot_table(index=["model", "stepping"],
                                                 columns="schedule",
                                                 values=["regret at 4x", "loss at 4x"], sort=False)
step_table.style.format("{:.4g}")
""",
    "hide-input",
)

md(r"""
With $U$ equal to the longest budget, H ends that budget exactly at linear decay to its floor,
and its regret at 4x in the convex bound is {glue:text}`theory-u-convex-H-200-regret:.1%`; at the
paper's $1.25\times$ it is {glue:text}`theory-u-convex-H-250-regret:.1%`; with $U$ ten times the
longest budget, $x$ stays small, the arc barely bends, H behaves like a constant rate and loses
{glue:text}`theory-u-convex-H-2000-regret:.1%` (exponent
{glue:text}`theory-u-convex-H-2000-beta:.2f`, against {glue:text}`theory-u-convex-H-200-beta:.2f`
at $U = 200$). EH follows the same order in the bound. In other words, the epoch insensitivity
of the optimal rate needs $U$ chosen from the longest budget one intends to run, a horizon
known in advance: H is not an anytime schedule.

Stepping per epoch rather than per optimizer step changes little at
{glue:text}`theory-steps-per-epoch` steps per epoch: C's regret at 4x in the bound is
{glue:text}`theory-step-convex-C-per-epoch:.2%` per epoch and
{glue:text}`theory-step-convex-C-per-step:.2%` per step, H's
{glue:text}`theory-step-convex-H-per-epoch:.2%` and {glue:text}`theory-step-convex-H-per-step:.2%`.
A staircase of a few steps per stair has almost the same sums as the smooth curve.

## What the theory predicts for the book's experiments

Each committed study's budgets, steps per epoch (from its runs' data subset and batch size) and
hyperbolic upper bound are read from its runs' configurations (`book_tasks`). For each task the
table gives the exponent $\beta$ of $\gamma^*(T) \propto T^{\beta}$ each model predicts for the
registry's defaults at the task's budgets. The learning-rate maps measure $\beta$ on the real
tasks; where it lands between the easy regime's and the hard regime's values says which regime
the task is in, and therefore whether the square-root rule or H's self-rescaling is the right
thing to want.
""")

code(
    r"""
tasks = theory_summary.book_tasks()
display(tasks.set_index("task"))
distinct = tasks.drop_duplicates(subset=["budgets", "steps_per_epoch", "upper_bound"])
exponents = theory_summary.predicted_exponents(distinct, ("N", "C", "H", "EH", "WSD", "SF"))
exponents = tasks[["task", "budgets", "steps_per_epoch", "upper_bound"]].merge(
    distinct[["task", "budgets", "steps_per_epoch", "upper_bound"]].rename(
        columns={"task": "computed as"}),
    on=["budgets", "steps_per_epoch", "upper_bound"],
)[["task", "computed as"]].merge(exponents, left_on="computed as", right_on="task",
                                  suffixes=("", "_"))
exponent_table = exponents.pivot_table(index=["task", "model"], columns="scheduler",
                                       values="exponent", sort=False)
for (task, model), row in exponent_table.iterrows():
    key = task.replace(" ", "-").replace("(", "").replace(")", "")
    for name, value in row.items():
        glue(f"theory-task-{key}-{model}-{name}", float(value), display=False)
exponent_table.round(2)
""",
    "hide-input",
)

md(r"""
For the image task ({glue:text}`theory-task-image-convex-C:.2f` for C in the bound, against
{glue:text}`theory-task-image-convex-H:.2f` for H with the study's $U$ and
{glue:text}`theory-task-image-convex-EH:.2f` for EH), the sequence tasks and the operator tasks
the bound and the easy regime predict a clearly negative exponent for the fixed shapes, a
smaller one for H and one near zero for EH; the hard regime predicts zero everywhere. Short
budgets of 5 to 20 epochs make the convex bound's logarithms visible (N's exponent is below
$-1/2$), and a $U$ close to the longest budget makes H's exponent small.

## The theory's verdict on the paper's claims

`theory_summary.theory_rows` reads each of the paper's claims in the three models, with the
settings tuned at {glue:text}`theory-tune-budget` epochs; `sqrt_rule_statement` says where the
square-root rule serves as well as H or EH. {ref}`chap-verdict` places these rows beside the
experiments'.
""")

code(
    r"""
claims = theory_summary.theory_rows()
statements = theory_summary.sqrt_rule_statement()
for row in statements.itertuples():
    glue(f"theory-sqrt-{row.model}", row.statement, display=False)
glue("theory-sqrt-serves", ", ".join(MODELS[m] for m in statements.loc[
    statements["serves_as_well"], "model"]) or "no model", display=False)
with pd.option_context("display.max_colwidth", None):
    display(claims.set_index("claim"))
""",
    "hide-input",
)

md(r"""
* {glue:text}`theory-sqrt-convex`.
* {glue:text}`theory-sqrt-easy`.
* {glue:text}`theory-sqrt-hard`.

So the square-root rule serves as well as H or EH in: {glue:text}`theory-sqrt-serves`. Where the
best rate shrinks with the budget (noise-dominated training, and the convex worst case), H's
advantage in transfer is exactly an implicit lowering of its average rate, which the rule gives
any schedule. Where it does not shrink (signal-limited training), H and EH need no rescaling,
and neither does anything else; the schedule's shape, not its transfer, then decides, and a
long plateau with a short cooldown wins.

## For practitioners

`rescaled_rate` takes a schedule, its settings and the rate tuned at one budget and returns the
rate the convex bound would pick at another, with the square-root rule's beside it. For C tuned
at $3\times10^{-3}$ over 50 epochs and run for 200:
""")

code(
    r"""
advice = {
    "C": rescaled_rate("C", 3e-3, 50, 200, steps_per_epoch=steps_per_epoch),
    "H (U = 250)": rescaled_rate("H", 3e-3, 50, 200, steps_per_epoch=steps_per_epoch,
                                 upper_bound=250),
    "WSD": rescaled_rate("WSD", 3e-3, 50, 200, steps_per_epoch=steps_per_epoch),
}
glue("theory-advice-c-bound", advice["C"].bound, display=False)
glue("theory-advice-h-bound", advice["H (U = 250)"].bound, display=False)
pd.DataFrame(
    {name: {"rate from the bound": a.bound, "square-root rule": a.sqrt_rule,
            "bound's exponent": a.bound_exponent} for name, a in advice.items()}
).T.style.format({"rate from the bound": "{:.2e}", "square-root rule": "{:.2e}",
                  "bound's exponent": "{:.3f}"})
""",
    "hide-input",
)

md(r"""
The bound picks {glue:text}`theory-advice-c-bound:.2e` for C, next to the rule's
$1.5\times10^{-3}$, and {glue:text}`theory-advice-h-bound:.2e` for H, which rescales itself.
These are worst-case answers for convex problems and a starting point for a short check on the
real task, not a replacement for it.

## Summary

* The last-iterate bound {eq}`eq-theory-bound` is $A/\gamma + B\gamma$ in the base rate, so its
  optimum is closed-form {eq}`eq-theory-optimum`; for a schedule of fixed shape it falls as
  $T^{-1/2}$ (up to logarithms).
* H at $N = U$ is linear decay to $\eta_{inf}$, EH geometric decay; their average rate falls with
  $x = N/U$ in closed form {eq}`eq-theory-average`, which makes their optimal rate nearly
  independent of the budget when $U$ is close to the longest budget, and not when $U$ is large.
* In the convex bound and the noise-dominated NQM, H transfers from 1x to 4x with a small regret
  and fixed shapes do not; the square-root rule gives the fixed shapes the same transfer, and
  with linear decay the same distance to the best schedule.
* In the signal-limited NQM nothing needs rescaling; the rule hurts, and WSD-like shapes are best.
* The exponents per task above are what the learning-rate maps should find, depending on the
  regime each task is in.

## Exercises

1. Prove that the bound of a constant rate $\eta_t = \gamma$ over $T$ steps is
   $D^2/(2\gamma T) + \frac{\gamma G^2}{2}(1 + H_{T-1})$, with $H_{T-1}$ the harmonic number, and
   deduce the exponent of $\gamma^*$. Check it against `convex_optimum`.
   *Hint:* for constant rates $Q_k/S_k = \gamma$ and $\eta_k/S_{k+1} = 1/(T-k)$.
2. Rerun the transfer of H in the easy regime with 2 instead of
   {glue:text}`theory-steps-per-epoch` steps per epoch. Does H still transfer, and why might the
   number of steps matter for the NQM but not for the exponent of the bound?
   *Hint:* the NQM has an absolute time scale ($1/(\eta h_{min})$ steps), the bound does not.
3. With `transfer(["H"], "convex", fixed={"H": {"upper_bound": U}}, grids={"H": {}})`, plot H's
   regret at 4x against $U$ from 200 to 4000. Where does it reach C's?
   *Hint:* for large $U$ the arc is almost flat, so H tends to a constant rate.

```{admonition} Solution for exercise 1
:class: dropdown
With $\eta_t = \gamma$: $S_k = \gamma(T-k+1)$ and $Q_k = \gamma^2(T-k+1)$, so $Q_k/S_k = \gamma$
and $\eta_k/S_{k+1} = 1/(T-k)$. The bound is
$D^2/(2\gamma T) + G^2\gamma/2 + \frac{G^2\gamma}{2}\sum_{k=1}^{T-1} \frac1{T-k}$, the claimed
form. Hence $\gamma^* = D/(G\sqrt{T(1 + H_{T-1})})$, which falls slightly faster than
$T^{-1/2}$ because $H_{T-1} \approx \ln T$. The cell below checks both against `convex_optimum`.
```
""")

code(
    r"""
for T in (10, 100, 1000):
    harmonic = sum(1 / j for j in range(1, T))
    best = convex_optimum(np.ones(T))
    assert np.isclose(best.rate, 1 / np.sqrt(T * (1 + harmonic)))
    assert np.isclose(best.bound, 2 * np.sqrt(1 / (2 * T) * (1 + harmonic) / 2))
exact_slope = np.polyfit(np.log([10, 100, 1000]),
                         np.log([convex_optimum(np.ones(T)).rate for T in (10, 100, 1000)]), 1)[0]
print(f"exponent of gamma* for a constant rate between 10 and 1000 steps: {exact_slope:.3f}")
""",
    "hide-cell",
)

md(r"""
```{admonition} Solution for exercise 2
:class: dropdown
The cell below reruns H and C in the easy regime with 2 steps per epoch and prints them beside
the chapter's values. In the bound only the shape and the number of steps enter, and the
exponent is close to $-1/2$ at any number of steps; the NQM has its own clock: with fewer steps
the low-curvature coordinates are further from their noise floor, the problem is more
signal-limited, and the best rate moves less with the budget. How much less is what the printed
exponents show.
```
""")

code(
    r"""
few = transfer(["C", "H"], "easy", tune_budget=tune_budget, budgets=budgets, steps_per_epoch=2)
for name in ("C", "H"):
    row, ours = few.row(name, budgets[-1]), results["easy"].row(name, budgets[-1])
    print(f"{name}: regret at 4x {row.regret:.1%} with 2 steps per epoch "
          f"({ours.regret:.1%} with {steps_per_epoch}), exponent {few.exponents[name]:.2f} "
          f"({results['easy'].exponents[name]:.2f})")
""",
    "hide-cell",
)

md(r"""
```{admonition} Solution for exercise 3
:class: dropdown
Each $U$ costs one closed-form optimum per budget, so a sweep is instant. H's regret rises with
$U$ from its value at $U$ = 200 towards a constant rate's (N's, printed last), passing C's
somewhere if the printed values cross it.
```
""")

code(
    r"""
c_regret = results["convex"].row("C", budgets[-1]).regret
for U in (200, 250, 400, 800, 1600, 4000, 40_000):
    h_only = transfer(["H"], "convex", tune_budget=tune_budget, budgets=budgets,
                      steps_per_epoch=steps_per_epoch, fixed={"H": {"upper_bound": U}},
                      grids={"H": {}})
    regret = h_only.row("H", budgets[-1]).regret
    print(f"U = {U:6d}: H's regret at 4x {regret:6.1%}" + ("  (above C's)" if regret > c_regret
                                                           else ""))
print(f"C: {c_regret:.1%}; N: {results['convex'].row('N', budgets[-1]).regret:.1%}")
""",
    "hide-cell",
)


def build() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    for index, (kind, source, tags) in enumerate(CELLS):
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
            source
        )
        cell.id = f"theory-{index:02d}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, PATH)


if __name__ == "__main__":
    build()
