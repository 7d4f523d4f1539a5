"""How far a study is from the paper's: scale factors computed from the stored runs.

A reduced study shortens more than the budgets. A training subset also cuts the optimizer
updates per epoch, and a narrow model has fewer parameters, so "a tenth of the epochs" can mean
a hundredth of the updates. :func:`scale_table` states every factor next to the paper's value:

* epochs of the longest budget;
* optimizer updates per epoch, :math:`\\lceil n_{\\text{train}} / B \\rceil` (the trainer keeps
  the last, smaller batch), and in total at the longest budget;
* training examples and model parameters, from the data set's settings and the model the runs
  name (:func:`hyperlr.lab.sizes.data_shape`: the data set is neither read nor generated, so the
  table needs no data on the machine that builds the book).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import pandas as pd

from ..registry import PAPER_UPPER_BOUND, scheduler_spec
from .models import make_model
from .paper import BUDGETS
from .sizes import data_shape

__all__ = [
    "PAPER_SCALES",
    "PaperScale",
    "RerunCost",
    "device_summary",
    "rerun_cost",
    "scale_table",
    "settings_against_paper",
]


@dataclass(frozen=True)
class PaperScale:
    """One of the paper's experiments, by the numbers a reduced study is compared with.

    Attributes:
        label: what the paper trained, e.g. ``"CIFAR-10, SimpleCNN"``.
        train_examples: training examples per epoch.
        batch_size: examples per optimizer update.
        longest_budget: the longest budget in epochs.
        parameters: the model's trainable parameters.
        note: where a number is approximate or derived.
    """

    label: str
    train_examples: int
    batch_size: int
    longest_budget: int
    parameters: int
    note: str = ""

    @property
    def updates_per_epoch(self) -> int:
        return math.ceil(self.train_examples / self.batch_size)


#: The paper's experiments (``../shared/PAPER.md`` §3-4) by the model a run names. The
#: oscillator's training set is 80 % of the 9,902 sliding windows (50 + 50 steps) of its 10,001
#: samples, about 7,921; the published ExpHyperbolicLR runs probably took one more update per
#: epoch (PAPER.md §7), not counted here.
PAPER_SCALES: dict[str, PaperScale] = {
    "simple_cnn": PaperScale(
        "CIFAR-10, SimpleCNN (128 channels)", 50_000, 128, max(BUDGETS), 1_352_970
    ),
    "lstm_seq2seq": PaperScale(
        "oscillator, LSTM (hidden 128, 3 layers)",
        7_921,
        64,
        max(BUDGETS),
        662_657,
        note="training windows: about 80 % of 9,902",
    ),
    # The authors' operator loader turned each epoch into one batch of all 8,000 training
    # functions (issue "operator learning"; chapter 8): one optimizer update per epoch.
    "deeponet": PaperScale(
        "integral operator, DeepONet (1024 x 5, basis 50)",
        8_000,
        8_000,
        max(BUDGETS),
        8_604_773,
        note="one update per epoch (the authors' loader)",
    ),
    "traonet": PaperScale(
        "integral operator, TraONet (d_model 128, 3 + 3 layers)",
        8_000,
        8_000,
        max(BUDGETS),
        1_389_185,
        note="one update per epoch (the authors' loader)",
    ),
}

#: ExponentialLR's factor per epoch in the paper (``../shared/PAPER.md`` §2), which a reduced
#: study rescales with its budgets, as it does the upper bound U (``PAPER_UPPER_BOUND``).
PAPER_EXPONENTIAL_GAMMA = 0.96

_SETUP = ["dataset", "data_seed", "train_subset", "val_subset", "data_options", "batch_size"]
_MODEL = ["model", "model_options"]


def scale_table(runs: pd.DataFrame, paper: PaperScale | None = None) -> pd.DataFrame:
    """Our scale against the paper's, with the factor paper / ours per quantity.

    Args:
        runs: the tidy frame of :func:`hyperlr.lab.results.runs_to_frame` for one task (one
            data set, subset, batch size and model; budgets and schedules may vary).
        paper: the experiment to compare with; ``None``: :data:`PAPER_SCALES` by the runs' model.

    Returns:
        Rows ``epochs (longest budget)``, ``updates per epoch``, ``updates in total (longest
        budget)``, ``training examples``, ``model parameters``; columns ``ours``, ``paper`` and
        ``paper / ours``. The paper's label is in ``attrs["paper"]``.

    Raises:
        ValueError: no runs, runs of several setups, or no paper experiment for the model.
    """
    if runs.empty:
        raise ValueError("runs: no runs to measure")
    setups = runs[_SETUP + _MODEL].drop_duplicates()
    if len(setups) > 1:
        raise ValueError(
            f"runs: {len(setups)} different data/model setups; select one task's runs first"
        )
    setup = setups.iloc[0]
    if paper is None:
        if setup["model"] not in PAPER_SCALES:
            raise ValueError(
                f"paper: no paper experiment known for model {setup['model']!r}; pass one"
            )
        paper = PAPER_SCALES[setup["model"]]

    def optional(value):
        return None if pd.isna(value) else int(value)

    data = data_shape(
        setup["dataset"],
        seed=int(setup["data_seed"]),
        train_subset=optional(setup["train_subset"]),
        val_subset=optional(setup["val_subset"]),
        **json.loads(setup["data_options"]),
    )
    model = make_model(setup["model"], data, **json.loads(setup["model_options"]))
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    epochs = int(runs["epochs"].max())
    per_epoch = math.ceil(data.n_train / int(setup["batch_size"]))
    table = pd.DataFrame(
        {
            "ours": [epochs, per_epoch, epochs * per_epoch, data.n_train, parameters],
            "paper": [
                paper.longest_budget,
                paper.updates_per_epoch,
                paper.longest_budget * paper.updates_per_epoch,
                paper.train_examples,
                paper.parameters,
            ],
        },
        index=pd.Index(
            [
                "epochs (longest budget)",
                "updates per epoch",
                "updates in total (longest budget)",
                "training examples",
                "model parameters",
            ],
            name="quantity",
        ),
    )
    table["paper / ours"] = table["paper"] / table["ours"]
    table.attrs["paper"] = paper.label
    return table


def device_summary(runs: pd.DataFrame) -> str:
    """The devices that made the runs, in words: ``"x86_64 CPU (1 or 2 threads)"``.

    Runs record their device as e.g. ``"x86_64 (1 thread)"``; runs stored by older versions
    wrote ``"(1 threads)"``. Thread counts of one processor are merged into one phrase.
    """
    threads: dict[str, set[int]] = {}
    for name in sorted(set(runs["device_name"])):
        match = re.fullmatch(r"(.*) \((\d+) threads?\)", name)
        processor, count = (match[1], int(match[2])) if match else (name, None)
        threads.setdefault(processor, set())
        if count is not None:
            threads[processor].add(count)
    parts = []
    for processor, counts in threads.items():
        label = (
            processor if " " in processor or processor.startswith("cuda") else f"{processor} CPU"
        )
        if counts:
            numbers = sorted(counts)
            plural = "s" if numbers != [1] else ""
            label += f" ({' or '.join(map(str, numbers))} thread{plural})"
        parts.append(label)
    return ", ".join(parts)


def duration_in_words(seconds: float) -> str:
    """A duration in a readable unit: seconds under two minutes, minutes under two hours, else
    hours (so that a tiny rerun does not read "0.00 h")."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def training_time(runs: pd.DataFrame) -> str:
    """The runs' training time in words (:func:`duration_in_words`), each run counted once with
    its own wall time (a grouped run, its share of the group's)."""
    return duration_in_words(float(runs.groupby("key")["wall_time_s"].first().sum()))


@dataclass(frozen=True)
class RerunCost:
    """What a paper-scale rerun would cost on the processor that made a study's runs.

    Attributes:
        runs: runs the rerun trains.
        updates: optimizer updates over all of them.
        seconds_per_update: the study's measured mean, each run's wall time (its share of a
            group's) over its updates.
        lower_bound_hours: ``updates * seconds_per_update``: the paper's models and batches are
            larger than the study's, so the rerun takes at least this long on that processor.
        scaled_hours: the same, times the ratio of parameters times examples per update (paper
            over ours), a first-order estimate of the larger models' cost.
        device: the processor, in words (:func:`device_summary`).
    """

    runs: int
    updates: int
    seconds_per_update: float
    lower_bound_hours: float
    scaled_hours: float
    device: str


def rerun_cost(
    runs: pd.DataFrame, budgets, seeds: int, schedulers: int, paper: PaperScale | None = None
) -> RerunCost:
    """The cost of rerunning a study at the paper's scale, from the study's measured speed.

    Args:
        runs: one task's runs, as for :func:`scale_table` (one row per run and epoch).
        budgets: the rerun's budgets in epochs.
        seeds, schedulers: how many seeds and schedules the rerun trains per budget.
        paper: the experiment rerun; ``None``: :data:`PAPER_SCALES` by the runs' model.

    Raises:
        ValueError: as :func:`scale_table`, or a count below 1.
    """
    for name, value in (("seeds", seeds), ("schedulers", schedulers)):
        if int(value) < 1:
            raise ValueError(f"{name}: expected at least 1, got {value!r}")
    table = scale_table(runs, paper)
    per_epoch = int(table.loc["updates per epoch", "ours"])
    per_run = runs.groupby("key")[["wall_time_s", "epochs"]].first()  # one row per run
    seconds = float((per_run["wall_time_s"] / (per_run["epochs"] * per_epoch)).mean())
    paper_per_epoch = int(table.loc["updates per epoch", "paper"])
    count = len(list(budgets)) * int(seeds) * int(schedulers)
    updates = sum(int(b) for b in budgets) * int(seeds) * int(schedulers) * paper_per_epoch
    examples = table.loc["training examples"]
    batch_ratio = (examples["paper"] / paper_per_epoch) / (examples["ours"] / per_epoch)
    work_ratio = float(table.loc["model parameters", "paper / ours"]) * batch_ratio
    hours = updates * seconds / 3600
    return RerunCost(count, updates, seconds, hours, hours * work_ratio, device_summary(runs))


def _values(runs: pd.DataFrame, scheduler: str, setting: str) -> list[float]:
    """The distinct values of one schedule's ``setting`` among ``runs``, sorted: the run's
    override, else the registry's default at the run's budget."""
    chosen = runs.loc[runs["scheduler"] == scheduler, ["scheduler_overrides", "epochs"]]
    found = set()
    for text, epochs in chosen.drop_duplicates().itertuples(index=False):
        overrides = json.loads(text)
        default = scheduler_spec(scheduler).defaults(int(epochs)).get(setting)
        found.add(overrides.get(setting, default))
    return sorted(value for value in found if value is not None)


def _listed(values: list[float]) -> str:
    return " or ".join(f"{value:g}" for value in values)


def settings_against_paper(runs: pd.DataFrame, paper: PaperScale | None = None) -> str:
    """The settings of one task's runs next to the paper's, in words, from the runs themselves.

    Names the budgets (and their ratio to the paper's), the upper bound U of H and EH and
    ExponentialLR's factor where those schedules ran, the model's options against the paper's
    model, and the initial learning rates. A chapter's scale box pastes this sentence, so that a
    rerun with other parameters describes its own settings rather than the committed study's.

    Raises:
        ValueError: as :func:`scale_table` (no runs, several setups, unknown model).
    """
    table = scale_table(runs, paper)
    budgets = sorted({int(b) for b in runs["epochs"]})
    ratio = budgets[-1] / max(BUDGETS)
    span = f"{budgets[0]} to {budgets[-1]}" if len(budgets) > 1 else f"{budgets[0]}"
    parts = [
        f"budgets of {span} epochs instead of {min(BUDGETS)} to {max(BUDGETS)} "
        f"(the longest is {ratio:.3g} times the paper's)"
    ]
    bounds = sorted(set(_values(runs, "H", "upper_bound") + _values(runs, "EH", "upper_bound")))
    if bounds:
        parts.append(
            f"the hyperbolic upper bound U = {_listed(bounds)} instead of {PAPER_UPPER_BOUND}"
        )
    gammas = _values(runs, "E", "gamma")
    if gammas:
        paper_gamma = PAPER_EXPONENTIAL_GAMMA
        parts.append(f"ExponentialLR's factor {_listed(gammas)} per epoch instead of {paper_gamma}")
    options = sorted(set(runs["model_options"]))
    parts.append(
        f"model {runs['model'].iloc[0]} with options {' or '.join(options)} "
        f"(the paper's: {table.attrs['paper']})"
    )
    rates = sorted({float(r) for r in runs["lr_init"]})
    if len(rates) == 1:
        parts.append(f"the same initial learning rate, {rates[0]:g}, for every schedule")
    else:
        parts.append(f"initial learning rates from {rates[0]:g} to {rates[-1]:g}")
    return "; ".join(parts)
