"""Tests of hyperlr.lab.grouped: runs trained together equal the same runs trained alone."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from hyperlr.lab.data import load_dataset
from hyperlr.lab.grouped import default_group_size, group_runs, lstm_forward, train_runs
from hyperlr.lab.results import ResultsStore, RunFileError
from hyperlr.lab.train import RunConfig, train_run

IMAGE = {"dataset": "digits", "train_subset": 96, "val_subset": 48, "batch_size": 48}
IMAGE_MODEL = {"channels": 8, "hidden": 16}
SEQUENCE = {
    "dataset": "oscillator",
    "train_subset": 64,
    "val_subset": 32,
    "batch_size": 32,
    "data_options": {"history": 12, "horizon": 6},
}
SEQUENCE_MODEL = {"hidden_size": 8, "num_layers": 2}
OPERATOR = {
    "dataset": "integral",
    "train_subset": 48,
    "val_subset": 16,
    "batch_size": 24,
    "data_options": {"n_functions": 80},
}
OPERATOR_MODEL = {"width": 16, "depth": 2, "basis": 8}  # DeepONet, with a buffer
# Schedules: constant, cosine, the two hyperbolic ones, a per-batch one (OneCycle) and
# schedule-free AdamW; each at two seeds and two budgets.
COMPETITORS = [
    ("N", {}, "adamw"),
    ("C", {}, "adamw"),
    ("H", {"upper_bound": 6}, "adamw"),
    ("EH", {"upper_bound": 6}, "adamw"),
    ("OC", {}, "adamw"),
    ("N", {}, "schedulefree_adamw"),
]


def mixed_group(task: dict, model_options: dict) -> list[RunConfig]:
    return [
        RunConfig(
            scheduler=code,
            epochs=budget,
            seed=seed,
            lr=3e-3,
            scheduler_overrides=overrides,
            optimizer=optimizer,
            model_options=model_options,
            device="cpu",
            **task,
        )
        for code, overrides, optimizer in COMPETITORS
        for seed in (1, 2)
        for budget in (1, 2)
    ]


def assert_same_curves(grouped, alone) -> None:
    assert grouped.config == alone.config
    for name, values in alone.history.items():
        if name == "epoch_time_s":
            continue
        assert len(grouped.history[name]) == len(values)
        for got, want in zip(grouped.history[name], values, strict=True):
            if math.isnan(want):
                assert math.isnan(got), (grouped.config, name)
            else:
                assert got == pytest.approx(want, rel=1e-4, abs=1e-7), (grouped.config, name)


@pytest.mark.parametrize(
    ("task", "model_options"),
    [(IMAGE, IMAGE_MODEL), (SEQUENCE, SEQUENCE_MODEL), (OPERATOR, OPERATOR_MODEL)],
)
def test_group_equals_runs_alone(task, model_options):
    configs = mixed_group(task, model_options)
    first = configs[0]
    data = load_dataset(
        first.dataset,
        seed=first.data_seed,
        train_subset=first.train_subset,
        val_subset=first.val_subset,
        **first.data_options,
    )
    ended = []
    grouped = train_runs(configs, data, group_size=None, on_result=ended.append, progress=False)
    assert [r.config for r in grouped] == configs
    assert {r.group_size for r in grouped} == {len(configs)}
    # The short runs leave first, each reported the moment it ends.
    assert [r.config.epochs for r in ended] == [1] * 12 + [2] * 12
    for result in grouped:
        assert_same_curves(result, train_run(result.config, data, progress=False))
    if first.dataset == "oscillator":
        alone = train_run(configs[0], data, progress=False)
        torch.testing.assert_close(
            torch.tensor(grouped[0].forecasts["prediction"]),
            torch.tensor(alone.forecasts["prediction"]),
            rtol=1e-4,
            atol=1e-6,
        )


def test_lstm_forward_matches_the_layer():
    torch.manual_seed(0)
    for batch_first in (True, False):
        lstm = nn.LSTM(3, 5, num_layers=3, batch_first=batch_first)
        x = torch.randn(4, 7, 3) if batch_first else torch.randn(7, 4, 3)
        state = (torch.randn(3, 4, 5), torch.randn(3, 4, 5))
        for initial in (None, state):
            want, (want_h, want_c) = lstm(x, initial)
            got, (got_h, got_c) = lstm_forward(lstm, x, initial)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got_h, want_h, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got_c, want_c, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one-directional"):
        lstm_forward(nn.LSTM(3, 5, bidirectional=True), torch.randn(2, 4, 3))


def test_incompatible_configs_split_into_groups():
    base = {**IMAGE, "device": "cpu"}
    configs = [
        RunConfig(scheduler="N", epochs=2, seed=1, **base),
        RunConfig(scheduler="H", epochs=5, seed=1, lr=1e-2, **base),
        RunConfig(scheduler="N", epochs=2, seed=1, **{**base, "batch_size": 32}),
        RunConfig(scheduler="N", epochs=2, seed=1, model_options={"channels": 4}, **IMAGE),
        RunConfig(scheduler="C", epochs=3, seed=2, optimizer="schedulefree_adamw", **base),
    ]
    groups = group_runs(configs, group_size=None)
    assert sorted(len(g) for g in groups) == [1, 1, 3]
    big = next(g for g in groups if len(g) == 3)
    assert [c.epochs for c in big] == [5, 3, 2]  # longest first
    assert [len(g) for g in group_runs(configs[:1] + configs[1:2] + configs[4:], 2)] == [2, 1]
    results = train_runs(configs[2:4], progress=False)  # no shared data: each group loads its own
    assert [r.config for r in results] == configs[2:4]
    assert [r.group_size for r in results] == [1, 1]


def test_diverging_run_ends_alone(tmp_path):
    configs = [
        RunConfig(scheduler="N", epochs=3, seed=1, lr=lr, device="cpu", **IMAGE)
        for lr in (1e-3, 1e9)
    ]
    data = load_dataset("digits", train_subset=96, val_subset=48)
    store = ResultsStore(tmp_path)
    grouped = train_runs(configs, data, group_size=None, on_result=store.save, progress=False)
    assert math.isnan(grouped[1].history["train_loss"][-1])
    for result in grouped:
        assert_same_curves(result, train_run(result.config, data, progress=False))
        stored = store.load(result.config)
        assert stored.group_size == 2 and stored.history["lr"] == result.history["lr"]


def test_bad_arguments_rejected_before_work():
    config = RunConfig(scheduler="N", epochs=1, **IMAGE)
    with pytest.raises(ValueError, match="group_size"):
        train_runs([config], group_size=0)
    with pytest.raises(ValueError, match="group_size"):
        group_runs([config], group_size=True)
    with pytest.raises(ValueError, match="RunConfig"):
        train_runs([config, "N"])
    with pytest.raises(ValueError, match="at least one"):
        train_runs([])
    with pytest.raises(ValueError, match="iterable"):
        train_runs(config)
    with pytest.raises(ValueError, match="on_result"):
        train_runs([config], on_result="store")
    other = load_dataset("digits", train_subset=100, val_subset=48)
    with pytest.raises(ValueError, match="does not match"):
        train_runs([config], other)


def test_group_size_is_stored_and_old_files_read_as_one(tmp_path):
    config = RunConfig(scheduler="N", epochs=1, device="cpu", **IMAGE)
    data = load_dataset("digits", train_subset=96, val_subset=48)
    result = train_run(config, data, progress=False)
    store = ResultsStore(tmp_path)
    path = store.save(dataclasses.replace(result, group_size=5))
    payload = json.loads(path.read_text())
    assert payload["group_size"] == 5 and store.load(config).group_size == 5
    del payload["group_size"]  # a file written before grouped training
    path.write_text(json.dumps(payload))
    assert store.load(config).group_size == 1
    path.write_text(json.dumps({**payload, "group_size": 0}))
    with pytest.raises(RunFileError, match="group_size"):
        store.load(config)


def test_auto_group_size_follows_the_measurements():
    cnn = RunConfig(scheduler="N", epochs=1, device="cpu", **IMAGE)
    lstm = RunConfig(scheduler="N", epochs=1, device="cpu", **SEQUENCE)
    assert default_group_size(cnn) == 1 and default_group_size(lstm) == 21
    configs = [
        dataclasses.replace(config, seed=seed) for config in (cnn, lstm) for seed in range(3)
    ]
    assert sorted(len(g) for g in group_runs(configs)) == [1, 1, 1, 3]
