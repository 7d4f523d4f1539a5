"""The comparison functions every chapter shares: paired intervals, sign flips, SLCD form, ranks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hyperlr.lab.analysis import (
    normalized_rank,
    paired_comparison,
    seed_centre,
    seed_finals,
    sign_flip_p,
    slcd_form,
)


def finals_frame(values: dict[str, list[float]], budget: int = 4) -> pd.DataFrame:
    """One final epoch per schedule and seed (seeds 0, 1, ...)."""
    rows = [
        {"scheduler": code, "seed": seed, "epochs": budget, "epoch": budget, "val": v}
        for code, column in values.items()
        for seed, v in enumerate(column)
    ]
    return pd.DataFrame(rows)


def test_paired_loss_ratio_matches_scipy_paired_t_interval():
    a, b = [0.10, 0.22, 0.31, 0.12], [0.12, 0.20, 0.40, 0.15]
    result = paired_comparison(finals_frame({"A": a, "B": b}), "val", "A", "B", kind="loss")
    test = stats.ttest_rel(np.log(a), np.log(b))
    interval = test.confidence_interval(0.95)
    assert result["n"] == 4 and result["df"] == 3
    assert result["difference"] == pytest.approx(math.exp(np.mean(np.log(a) - np.log(b))))
    assert result["low"] == pytest.approx(math.exp(interval.low))
    assert result["high"] == pytest.approx(math.exp(interval.high))


def test_paired_accuracy_difference_drops_diverged_pairs():
    a, b = [0.80, 0.82, 0.10, 0.85], [0.78, 0.81, 0.79, 0.80]
    frame = finals_frame({"A": a, "B": b})
    result = paired_comparison(frame, "val", "A", "B", kind="accuracy", diverged_below=0.2)
    d = np.array(a)[[0, 1, 3]] - np.array(b)[[0, 1, 3]]
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert result["n"] == 3 and result["df"] == 2
    assert result["difference"] == pytest.approx(d.mean())
    assert (result["low"], result["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert result["p_min"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="scheduler"):
        paired_comparison(frame, "val", "A", "Z", kind="accuracy")
    with pytest.raises(ValueError, match="level"):
        paired_comparison(frame, "val", "A", "B", kind="accuracy", level=95)


def test_sign_flip_p_against_enumeration():
    rng = np.random.default_rng(3)
    for n in (3, 4, 5):
        d = rng.normal(0.5, 1.0, n)
        patterns = itertools.product((-1, 1), repeat=n)
        sums = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in patterns]
        expected = np.mean([s >= abs(d.sum()) - 1e-12 for s in sums])
        assert sign_flip_p(d) == pytest.approx(expected)
    # All differences of one sign: the smallest p the test can give, 2 / 2**n.
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25)
    assert sign_flip_p([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)


def test_seed_centre_is_the_centre_of_seed_finals():
    frame = finals_frame({"A": [0.80, 0.83, 0.86]})
    table = seed_finals(frame, "val", kind="accuracy")
    logit = np.log(np.array([0.80, 0.83, 0.86]) / (1 - np.array([0.80, 0.83, 0.86])))
    assert seed_centre([0.80, 0.83, 0.86], "accuracy") == pytest.approx(
        1 / (1 + math.exp(-logit.mean()))
    )
    assert table["centre"].iloc[0] == pytest.approx(seed_centre([0.80, 0.83, 0.86], "accuracy"))
    assert seed_centre([1e-3, 1e-1], "loss") == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="kind"):
        seed_centre([1.0], "error")


def test_slcd_form_scales_the_papers_epoch_10():
    assert slcd_form([50, 100, 150, 200], "loss") == ("log", 10)
    assert slcd_form([12, 24, 36, 48], "loss") == ("log", 2)
    assert slcd_form([5, 10, 15, 20], "accuracy") == ("linear", 1)
    assert slcd_form([2, 3], "loss") == ("linear", 1)  # too short for the log form
    with pytest.raises(ValueError, match="kind"):
        slcd_form([10], "mae")


def test_normalized_rank():
    assert [normalized_rank(r, 5) for r in (1, 3, 5)] == [0.0, 0.5, 1.0]
    assert math.isnan(normalized_rank(1, 1))
    with pytest.raises(ValueError, match="rank"):
        normalized_rank(6, 5)


def test_the_transfer_tables_arms_use_the_centre_of_every_final_value_table():
    from hyperlr.lab.train import RunConfig, RunResult
    from hyperlr.lab.transfer import TransferResult, transfer_regret

    def run(lr, seed, accuracy):
        config = RunConfig(dataset="digits", scheduler="N", epochs=2, seed=seed, lr=lr)
        history = {"val_loss": [1.0, 0.5], "val_accuracy": [0.1, accuracy]}
        return RunResult(config, history, 1.0, "cpu", "cpu", "float32", "digits", "-", {}, "-")

    short = [run(1e-2, seed, a) for seed, a in enumerate([0.80, 0.84, 0.90])]
    long = [run(1e-3, seed, a) for seed, a in enumerate([0.82, 0.85, 0.91])]
    keys = {
        ("N", "short"): [r.config.key for r in short],
        ("N", "long"): [r.config.key for r in long],
    }
    result = TransferResult(winners=None, trials=None, runs=short + long, keys=keys, long_budget=2)
    row = transfer_regret(result, "val_accuracy").loc["N"]
    # The logit-space centre (0.8497...), not the arithmetic mean (0.8467).
    assert row["short-tuned"] == pytest.approx(seed_centre([0.80, 0.84, 0.90], "accuracy"))
    assert row["short-tuned"] != pytest.approx(np.mean([0.80, 0.84, 0.90]), abs=1e-4)
    assert row["regret"] == pytest.approx(np.mean([0.02, 0.01, 0.01]))


def test_best_against_runner_up_reads_the_paired_interval():
    from hyperlr.lab.analysis import best_against_runner_up

    frame = finals_frame({"A": [0.10, 0.20, 0.30], "B": [0.11, 0.21, 0.33], "C": [1.0, 1.0, 1.0]})
    result = best_against_runner_up(frame, "val", kind="loss")
    assert (result["best"], result["runner_up"]) == ("A", "B")
    assert result["best_value"] == pytest.approx(seed_centre([0.10, 0.20, 0.30], "loss"))
    pair = paired_comparison(frame, "val", "B", "A", kind="loss")
    assert result["difference"] == pytest.approx(pair["difference"])
    assert result["tied"] == (pair["low"] <= 1 <= pair["high"])
    assert "2 degrees of freedom" in result["text"]
    one = best_against_runner_up(finals_frame({"A": [0.1, 0.2]}), "val", kind="loss")
    assert one["runner_up"] is None


def test_one_shared_seed_gives_no_interval_and_no_separation():
    from hyperlr.lab.analysis import best_against_runner_up

    result = best_against_runner_up(finals_frame({"A": [0.1], "B": [0.2]}), "val", kind="loss")
    assert result["n"] == 1 and math.isnan(result["low"]) and result["tied"]
    assert "too few for an interval" in result["text"]


def test_every_run_diverged_leaves_no_best():
    from hyperlr.lab.analysis import best_against_runner_up

    frame = finals_frame({"A": [0.1, 0.12], "B": [0.11, 0.1]})
    result = best_against_runner_up(frame, "val", kind="accuracy", diverged_below=0.2)
    assert result["best"] is None and math.isnan(result["best_value"])


def test_one_schedules_change_between_budgets_is_paired_over_seeds():
    rows = [
        {"scheduler": "A", "seed": s, "epochs": b, "epoch": b, "val": v}
        for b, values in ((2, [0.4, 0.5, 0.6]), (4, [0.2, 0.3, 0.5]))
        for s, v in enumerate(values)
    ]
    frame = pd.DataFrame(rows)
    step = paired_comparison(frame, "val", "A", "A", kind="loss", budget=4, second_budget=2)
    ratio = np.log([0.2, 0.3, 0.5]) - np.log([0.4, 0.5, 0.6])
    assert step["difference"] == pytest.approx(math.exp(ratio.mean()))
    assert step["n"] == 3
