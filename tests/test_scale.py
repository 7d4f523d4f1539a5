"""Scale factors against the paper, from a tiny study's runs."""

from __future__ import annotations

import pandas as pd
import pytest

from hyperlr.lab.models import make_model
from hyperlr.lab.results import runs_to_frame
from hyperlr.lab.scale import (
    PAPER_SCALES,
    PaperScale,
    rerun_cost,
    scale_table,
    settings_against_paper,
)
from hyperlr.lab.train import RunConfig, RunResult, load_data


def _frame(**settings) -> pd.DataFrame:
    runs = []
    for epochs in (2, 3):
        config = RunConfig(
            dataset="digits",
            scheduler="N",
            epochs=epochs,
            train_subset=100,
            batch_size=32,
            model_options={"channels": 4, "hidden": 16},
            **settings,
        )
        history = {"val_loss": [1.0] * epochs, "val_accuracy": [0.5] * epochs}
        runs.append(
            RunResult(config, history, 1.0, "cpu", "cpu", "float32", "digits", "-", {}, "-")
        )
    return runs_to_frame(runs)


def test_the_factors_count_epochs_updates_examples_and_parameters():
    paper = PaperScale(
        "a paper", train_examples=1000, batch_size=100, longest_budget=30, parameters=10_000
    )
    table = scale_table(_frame(), paper)
    config = RunConfig(
        dataset="digits",
        scheduler="N",
        epochs=3,
        train_subset=100,
        model_options={"channels": 4, "hidden": 16},
    )
    parameters = sum(
        p.numel()
        for p in make_model("simple_cnn", load_data(config), channels=4, hidden=16).parameters()
    )
    assert table["ours"].tolist() == [3, 4, 12, 100, parameters]  # ceil(100 / 32) = 4 updates
    assert table["paper"].tolist() == [30, 10, 300, 1000, 10_000]
    assert table.loc["updates in total (longest budget)", "paper / ours"] == pytest.approx(25)
    assert table.attrs["paper"] == "a paper"


def test_the_papers_updates_per_epoch():
    assert PAPER_SCALES["simple_cnn"].updates_per_epoch == 391
    assert PAPER_SCALES["lstm_seq2seq"].updates_per_epoch == 124


def test_mixed_setups_and_empty_runs_are_refused():
    mixed = pd.concat([_frame(), _frame(data_seed=1)])
    with pytest.raises(ValueError, match="setups"):
        scale_table(mixed)
    with pytest.raises(ValueError, match="no runs"):
        scale_table(_frame().iloc[:0])


def test_devices_in_words_merge_thread_counts_and_old_spellings():
    from hyperlr.lab.scale import device_summary

    names = ["x86_64 (1 thread)", "x86_64 (1 threads)", "x86_64 (2 threads)", "NVIDIA H100"]
    frame = pd.DataFrame({"device_name": names})
    assert device_summary(frame) == "NVIDIA H100, x86_64 CPU (1 or 2 threads)"


@pytest.mark.parametrize(
    ("wall_times", "words"),
    [([20.0, 22.4], "42 s"), ([100.0, 110.0], "3.5 min"), ([3600.0, 3672.0], "2.02 h")],
)
def test_training_time_sums_each_run_once_in_a_readable_unit(wall_times, words):
    from hyperlr.lab.scale import training_time

    # Two rows per run (two epochs), each carrying the run's wall time: counted once per run.
    frame = pd.DataFrame(
        {"key": ["a", "a", "b", "b"], "wall_time_s": [t for t in wall_times for _ in range(2)]}
    )
    assert training_time(frame) == words


def test_the_operator_networks_have_the_papers_sizes_and_one_update_per_epoch():
    from hyperlr.lab.models import MODELS

    for name in ("deeponet", "traonet"):
        paper = PAPER_SCALES[name]
        assert paper.parameters == sum(p.numel() for p in MODELS[name].cls().parameters())
        assert paper.updates_per_epoch == 1 and paper.train_examples == 8_000


def test_a_reruns_cost_from_the_measured_seconds_per_update():
    paper = PaperScale(
        "a paper", train_examples=1000, batch_size=100, longest_budget=30, parameters=10_000
    )
    frame = _frame()  # runs of 2 and 3 epochs, 1 s each, ceil(100 / 32) = 4 updates per epoch
    cost = rerun_cost(frame, budgets=[10, 20], seeds=2, schedulers=3, paper=paper)
    seconds = (1 / 8 + 1 / 12) / 2
    assert cost.runs == 2 * 2 * 3
    assert cost.updates == (10 + 20) * 2 * 3 * 10  # the paper's 10 updates per epoch
    assert cost.seconds_per_update == pytest.approx(seconds)
    assert cost.lower_bound_hours == pytest.approx(1800 * seconds / 3600)
    ours = scale_table(frame, paper).loc["model parameters", "ours"]
    # 100 examples per update in the paper against 25 in ours, and 10,000 parameters.
    assert cost.scaled_hours == pytest.approx(cost.lower_bound_hours * 10_000 / ours * 4)
    with pytest.raises(ValueError, match="seeds"):
        rerun_cost(frame, budgets=[10], seeds=0, schedulers=1, paper=paper)


def test_the_settings_sentence_names_each_setting_the_runs_used_next_to_the_papers():
    runs = []
    for scheduler, overrides, lr in (
        ("H", {"upper_bound": 40}, 1e-3),
        ("E", {"gamma": 0.5}, 1e-3),
        ("C", {}, 1e-3),
    ):
        for epochs in (4, 8):
            config = RunConfig(
                dataset="digits",
                scheduler=scheduler,
                epochs=epochs,
                train_subset=100,
                lr=lr,
                scheduler_overrides=overrides,
                model_options={"channels": 4},
            )
            history = {"val_loss": [1.0] * epochs, "val_accuracy": [0.5] * epochs}
            runs.append(
                RunResult(config, history, 1.0, "cpu", "cpu", "float32", "digits", "-", {}, "-")
            )
    sentence = settings_against_paper(runs_to_frame(runs))
    assert sentence.startswith(
        "budgets of 4 to 8 epochs instead of 50 to 200 (the longest is 0.04 times the paper's)"
    )
    assert "the hyperbolic upper bound U = 40 instead of 250" in sentence
    assert "ExponentialLR's factor 0.5 per epoch instead of 0.96" in sentence
    assert 'options {"channels": 4} (the paper\'s: CIFAR-10, SimpleCNN (128 channels))' in sentence
    assert sentence.endswith("the same initial learning rate, 0.001, for every schedule")
    # Without H, EH or E their settings are not named; several rates are given as a range.
    plain = runs_to_frame([r for r in runs if r.config.scheduler == "C"])
    plain.loc[plain["epochs"] == 8, "lr_init"] = 3e-3
    words = settings_against_paper(plain)
    assert "upper bound" not in words and "ExponentialLR" not in words
    # Without an override, the registry's default is named: the paper's U for H.
    default_h = runs_to_frame([r for r in runs if r.config.scheduler == "H"])
    default_h["scheduler_overrides"] = "{}"
    assert "the hyperbolic upper bound U = 250 instead of 250" in settings_against_paper(default_h)
    assert words.endswith("initial learning rates from 0.001 to 0.003")
