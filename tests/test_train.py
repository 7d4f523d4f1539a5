"""Tests of hyperlr.lab.train: the run configuration, repeatability and the schedule's stepping."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from hyperlr.lab.data import digits
from hyperlr.lab.results import read_run, write_run
from hyperlr.lab.train import HISTORY_KEYS, RunConfig, resolve_device, train_run
from hyperlr.registry import is_per_batch, make_scheduler

TINY = {"train_subset": 160, "val_subset": 64, "batch_size": 64}  # 3 batches per epoch


@pytest.fixture(scope="module")
def tiny_digits():
    return digits(train_subset=TINY["train_subset"], val_subset=TINY["val_subset"])


def curves(result) -> dict[str, list[float]]:
    return {k: v for k, v in result.history.items() if k != "epoch_time_s"}


def test_same_config_gives_identical_curves(tiny_digits):
    config = RunConfig("digits", "C", epochs=3, seed=7, device="cpu", **TINY)
    rng_before = torch.random.get_rng_state()
    first = train_run(config, tiny_digits, progress=False)
    second = train_run(config, progress=False)  # loads its own copy of the data
    assert curves(first) == curves(second)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG untouched
    other_seed = train_run(RunConfig("digits", "C", 3, seed=8, **TINY), tiny_digits, progress=False)
    assert curves(other_seed) != curves(first)


def test_result_records_curves_and_provenance(tiny_digits):
    result = train_run(RunConfig("digits", "N", 2, **TINY), tiny_digits, progress=False)
    assert tuple(result.history) == HISTORY_KEYS["classification"]
    assert result.history["epoch"] == [1, 2]
    assert all(len(values) == 2 for values in result.history.values())
    assert all(0 <= a <= 1 for a in result.history["val_accuracy"])
    assert all(math.isfinite(v) for v in result.history["train_loss"] + result.history["val_loss"])
    assert result.device == "cpu" and result.precision == "float32"
    assert result.dataset == "digits" and "load_digits" in result.dataset_source
    assert set(result.versions) >= {"python", "torch", "hyperlr"}
    assert result.wall_time_s >= sum(result.history["epoch_time_s"])


def reference_lrs(code: str, epochs: int, steps: int, lr: float, **overrides) -> list[float]:
    """The lr at each epoch's first batch, stepping a fresh schedule as the paper does."""
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(code, optimizer, epochs, steps, **overrides)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps if is_per_batch(code) else 1):
            optimizer.step()
            scheduler.step()
    return lrs


@pytest.mark.parametrize(("code", "overrides"), [("H", {"upper_bound": 8}), ("EH", {}), ("P", {})])
def test_recorded_lr_follows_the_per_epoch_schedule(tiny_digits, code, overrides):
    config = RunConfig("digits", code, 4, lr=0.01, scheduler_overrides=overrides, **TINY)
    result = train_run(config, tiny_digits, progress=False)
    assert result.history["lr"] == pytest.approx(reference_lrs(code, 4, 3, 0.01, **overrides))
    assert result.history["lr"][0] == pytest.approx(0.01)  # epoch 0 trains at eta_init


def test_per_batch_schedule_steps_every_batch(tiny_digits):
    assert is_per_batch("OC")
    result = train_run(RunConfig("digits", "OC", 3, lr=0.01, **TINY), tiny_digits, progress=False)
    expected = reference_lrs("OC", 3, 3, 0.01)
    assert result.history["lr"] == pytest.approx(expected)
    # Stepped once per epoch instead, OneCycle would still be near its start in epoch 2.
    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=0.01)
    per_epoch = make_scheduler("OC", optimizer, 3, 3)
    optimizer.step()
    per_epoch.step()
    assert result.history["lr"][1] != pytest.approx(optimizer.param_groups[0]["lr"])


def test_augmentation_changes_training(tiny_digits):
    plain = train_run(RunConfig("digits", "N", 1, **TINY), tiny_digits, progress=False)
    augmented = RunConfig("digits", "N", 1, augment=True, **TINY)
    assert augmented.key != plain.config.key
    result = train_run(augmented, tiny_digits, progress=False)
    assert result.history["train_loss"] != plain.history["train_loss"]


def test_data_must_match_the_config(tiny_digits):
    with pytest.raises(ValueError, match="train_subset"):
        train_run(RunConfig("digits", "N", 1, train_subset=100), tiny_digits, progress=False)


def test_key_ignores_device_and_number_spelling():
    base = RunConfig("digits", "H", 10, scheduler_overrides={"upper_bound": 20, "infimum_lr": 1e-6})
    same = RunConfig(
        "digits",
        "H",
        10,
        lr=0.001,
        device="cuda",
        scheduler_overrides={"infimum_lr": 1e-6, "upper_bound": 20},
    )
    assert base.key == same.key and len(base.key) == 16
    assert RunConfig("digits", "N", 5, lr=1).key == RunConfig("digits", "N", 5, lr=1.0).key
    assert RunConfig("digits", "N", 5, seed=1).key != RunConfig("digits", "N", 5, seed=2).key
    assert RunConfig.from_dict(base.to_dict()) == base
    assert len({base, RunConfig.from_dict(base.to_dict())}) == 1


def test_fields_at_their_default_stay_out_of_the_key():
    # So that a field added later with a neutral default keeps every stored run's key.
    config = RunConfig("digits", "H", 10, seed=3, train_subset=100)
    assert json.loads(config.canonical_json()) == {
        "dataset": "digits",
        "epochs": 10,
        "model": "simple_cnn",
        "scheduler": "H",
        "seed": 3,
        "train_subset": 100,
    }
    assert config.key == hashlib.sha256(config.canonical_json().encode()).hexdigest()[:16]
    explicit = RunConfig("digits", "H", 10, seed=3, train_subset=100, lr=1e-3, data_options={})
    assert explicit.key == config.key


def test_overrides_are_copied():
    overrides = {"upper_bound": 20}
    config = RunConfig("digits", "H", 10, scheduler_overrides=overrides)
    key = config.key
    overrides["upper_bound"] = 30
    assert config.key == key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dataset", "mnist"),
        ("scheduler", "XYZ"),
        ("epochs", 0),
        ("epochs", 2.0),
        ("seed", -1),
        ("seed", True),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("weight_decay", -0.1),
        ("batch_size", 0),
        ("label_smoothing", 1.0),
        ("train_subset", 0),
        ("augment", "yes"),
        ("scheduler_overrides", {"x": object()}),
        ("model", "resnet"),
        ("device", "gpu"),
    ],
)
def test_invalid_config_names_the_field(field, value):
    fields = {"dataset": "digits", "scheduler": "N", "epochs": 1, field: value}
    with pytest.raises(ValueError, match=field):
        RunConfig(**fields)


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="colour"):
        RunConfig.from_dict({**RunConfig("digits", "N", 1).to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="incomplete"):
        RunConfig.from_dict({"dataset": "digits"})


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


SERIES = {"train_subset": 96, "val_subset": 32, "batch_size": 32}
SMALL_LSTM = {"hidden_size": 8, "num_layers": 1}


def test_forecasting_run_records_huber_loss_and_mae_repeatably(tmp_path):
    config = RunConfig(
        "oscillator",
        "H",
        epochs=3,
        seed=1,
        model_options=SMALL_LSTM,
        data_options={"stride": 10},
        scheduler_overrides={"upper_bound": 4},
        lr=1e-2,
        **SERIES,
    )
    assert config.model == "lstm_seq2seq"  # the task's default model
    first = train_run(config, progress=False)
    assert tuple(first.history) == HISTORY_KEYS["forecasting"]
    assert first.dataset == "oscillator" and "Newmark" in first.dataset_source
    # Huber with delta 1 on values in [0, 1] is half the squared error; MAE bounds it.
    for loss, mae in zip(first.history["val_loss"], first.history["val_mae"], strict=True):
        assert 0 < loss <= 0.5 * mae + 1e-9
    assert first.history["train_loss"][-1] < first.history["train_loss"][0]
    assert curves(train_run(config, progress=False)) == curves(first)
    # A few forecasts are kept for the chapter's figure, and survive the results store.
    assert first.forecasts["val_index"] == [0, 10, 20, 31]  # evenly spaced over 32
    assert [len(p) for p in first.forecasts["prediction"]] == [50] * 4
    path = write_run(first, tmp_path)
    assert read_run(path).forecasts == first.forecasts


def test_model_must_solve_the_datasets_task():
    with pytest.raises(ValueError, match="model must be a model of the forecasting task"):
        RunConfig("oscillator", "N", 2, model="simple_cnn")
    with pytest.raises(ValueError, match="model must be a model of the classification task"):
        RunConfig("digits", "N", 2, model="lstm_seq2seq")


@pytest.mark.parametrize("name", ["model_options", "data_options", "scheduler_overrides"])
def test_settings_mappings_must_be_json(name):
    with pytest.raises(ValueError, match=name):
        RunConfig("digits", "N", 2, **{name: {"bad": object()}})
    with pytest.raises(ValueError, match=name):
        RunConfig("digits", "N", 2, **{name: ["not", "a", "mapping"]})


def test_unknown_model_or_data_option_names_the_setting():
    with pytest.raises(ValueError, match="model_options: .* does not take depth"):
        train_run(RunConfig("digits", "N", 1, model_options={"depth": 3}, **TINY), progress=False)
    with pytest.raises(ValueError, match="data_options: .* does not take zeta"):
        train_run(RunConfig("digits", "N", 1, data_options={"zeta": 0.1}, **TINY), progress=False)


def test_schedule_free_adamw_is_a_repeatable_alternative_optimizer(tiny_digits):
    adamw = RunConfig("digits", "N", 2, seed=1, **TINY)
    free = RunConfig("digits", "N", 2, seed=1, optimizer="schedulefree_adamw", **TINY)
    assert free.key != adamw.key
    assert "optimizer" not in json.loads(adamw.canonical_json())  # default: old keys unchanged
    first = train_run(free, tiny_digits, progress=False)
    assert curves(train_run(free, tiny_digits, progress=False)) == curves(first)
    assert curves(first) != curves(train_run(adamw, tiny_digits, progress=False))
    with pytest.raises(ValueError, match="optimizer must be one of adamw, schedulefree_adamw"):
        RunConfig("digits", "N", 2, optimizer="sgd")
