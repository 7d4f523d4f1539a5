"""Tests of hyperlr.lab.results: atomic writes, round trips, invalid files and the DataFrame."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperlr.lab import results as hresults
from hyperlr.lab.results import (
    SCHEMA,
    ResultsStore,
    RunFileError,
    read_run,
    runs_to_frame,
    write_run,
)
from hyperlr.lab.train import RunConfig, RunResult, history_keys


def fake_result(epochs: int = 3, seed: int = 0, **config_fields) -> RunResult:
    """A run result with made-up curves (no training)."""
    config = RunConfig("digits", config_fields.pop("scheduler", "H"), epochs, seed, **config_fields)
    history = {
        "epoch": list(range(1, epochs + 1)),
        "train_loss": [2.0 / (e + 1) for e in range(epochs)],
        "val_loss": [2.1 / (e + 1) for e in range(epochs)],
        "val_accuracy": [0.5 + 0.1 * e for e in range(epochs)],
        "lr": [1e-3 * 0.9**e for e in range(epochs)],
        "epoch_time_s": [0.5] * epochs,
    }
    return RunResult(
        config=config,
        history=history,
        wall_time_s=1.5 * epochs,
        device="cpu",
        device_name="test cpu",
        precision="float32",
        dataset="digits",
        dataset_source="sklearn.datasets.load_digits",
        versions={"python": "3", "torch": "2", "torchvision": "0", "hyperlr": "0.1"},
        finished_at="2025-01-01T00:00:00+00:00",
    )


def same_numbers(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


def test_round_trip(tmp_path):
    result = fake_result(4)
    result.history["val_loss"][2] = math.nan  # a diverged epoch
    path = write_run(result, tmp_path / "runs")
    assert path == tmp_path / "runs" / f"{result.config.key}.json"
    assert json.loads(path.read_text())["history"]["val_loss"][2] is None  # strict JSON
    back = read_run(path)
    assert back.config == result.config
    keys = history_keys(result.config.dataset)
    assert all(same_numbers(back.history[k], result.history[k]) for k in keys)
    assert (back.device, back.dataset, back.dataset_source, back.versions) == (
        result.device,
        result.dataset,
        result.dataset_source,
        result.versions,
    )
    store = ResultsStore(tmp_path / "runs")
    assert result.config in store
    assert store.load(result.config).config == result.config
    assert store.load(RunConfig("digits", "N", 1)) is None


def test_device_is_not_part_of_the_key(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(fake_result(device="cuda"))
    loaded = store.load(RunConfig("digits", "H", 3, 0, device="cpu"))
    assert loaded is not None and loaded.config.device == "cuda"


def test_write_is_atomic(tmp_path, monkeypatch):
    result = fake_result()
    path = write_run(result, tmp_path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(hresults.os, "replace", crash)
    changed = fake_result()
    changed.history["train_loss"][0] = 99.0
    with pytest.raises(OSError, match="disk full"):
        write_run(changed, tmp_path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_leftover_temporary_files_are_ignored(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(fake_result())
    (tmp_path / ".0123456789abcdef.xyz.tmp").write_text('{"half": ')
    runs, problems = store.scan()
    assert len(runs) == 1 and problems == []


def corrupt_truncated(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def corrupt_schema(path: Path) -> None:
    payload = json.loads(path.read_text())
    payload["schema"] = "someone-else/7"
    path.write_text(json.dumps(payload))


def corrupt_edited_config(path: Path) -> None:
    payload = json.loads(path.read_text())
    payload["config"]["lr"] = 0.5
    path.write_text(json.dumps(payload))


def corrupt_short_history(path: Path) -> None:
    payload = json.loads(path.read_text())
    payload["history"]["val_loss"].pop()
    path.write_text(json.dumps(payload))


def corrupt_renamed(path: Path) -> None:
    path.rename(path.with_name("0000000000000000.json"))


def corrupt_not_an_object(path: Path) -> None:
    path.write_text("[1, 2, 3]")


def corrupt_dataset(path: Path) -> None:
    payload = json.loads(path.read_text())
    payload["dataset"]["name"] = "fashion_mnist"  # the config says digits
    path.write_text(json.dumps(payload))


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (corrupt_truncated, "not valid JSON"),
        (corrupt_schema, "schema"),
        (corrupt_edited_config, "hashes to"),
        (corrupt_short_history, "must list 3 values"),
        (corrupt_renamed, "hashes to"),
        (corrupt_not_an_object, "not a run file"),
        (corrupt_dataset, "names dataset 'digits' but the run used 'fashion_mnist'"),
    ],
)
def test_invalid_files_are_detected(tmp_path, corrupt, reason):
    store = ResultsStore(tmp_path)
    good = fake_result(seed=1)
    store.save(good)
    bad = fake_result(seed=2)
    corrupt(store.save(bad))
    bad_path = store.paths()[0] if corrupt is corrupt_renamed else store.path_for(bad.config)

    with pytest.raises(RunFileError, match=reason):
        read_run(bad_path)
    if corrupt is not corrupt_renamed:
        with pytest.raises(RunFileError, match=reason):
            store.load(bad.config)
    runs, problems = store.scan()
    assert [r.config for r in runs] == [good.config]
    assert [p.path for p in problems] == [bad_path]
    with pytest.raises(RunFileError, match="1 invalid run file"):
        store.frame()
    with pytest.warns(UserWarning, match="left out 1 invalid"):
        frame = store.frame(strict=False)
    assert set(frame["seed"]) == {1}


def test_frame_is_tidy(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(fake_result(3, seed=0))
    store.save(fake_result(2, seed=1, scheduler_overrides={"upper_bound": 300}))
    frame = store.frame()
    assert frame.shape[0] == 5
    assert frame.groupby("key").size().sort_values().tolist() == [2, 3]
    expected = {"key", "dataset", "scheduler", "epochs", "seed", "lr_init", "sched_upper_bound"}
    assert expected <= set(frame.columns)
    assert set(history_keys("digits")) <= set(frame.columns)
    assert {"device", "dataset_source", "precision", "wall_time_s"} <= set(frame.columns)
    assert frame["sched_upper_bound"].isna().sum() == 3
    assert frame.loc[frame["epochs"] == 2, "epoch"].tolist() == [1, 2]


def test_empty_frame_has_the_columns(tmp_path):
    frame = ResultsStore(tmp_path / "nothing").frame()
    assert frame.empty and {"key", "scheduler", "epoch", "val_loss"} <= set(frame.columns)
    assert runs_to_frame([]).columns.tolist() == frame.columns.tolist()


def test_file_carries_everything(tmp_path):
    payload = json.loads(write_run(fake_result(), tmp_path).read_text())
    assert payload["schema"] == SCHEMA
    assert {"config", "history", "wall_time_s", "device", "versions", "dataset"} <= set(payload)
    assert payload["dataset"] == {"name": "digits", "source": "sklearn.datasets.load_digits"}


def test_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="results_dir"):
        ResultsStore(tmp_path / "file" / "runs").check_writable()


def test_a_folder_named_like_a_run_file_is_refused(tmp_path):
    store = ResultsStore(tmp_path)
    config = fake_result().config
    store.path_for(config).mkdir()
    with pytest.raises(RunFileError, match="not a regular file"):
        store.load(config)
    runs, problems = store.scan()
    assert runs == [] and [p.path for p in problems] == [store.path_for(config)]


def test_stale_temporaries_are_removed_fresh_ones_kept(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(fake_result())
    stale = tmp_path / ".0123456789abcdef.killed.tmp"
    fresh = tmp_path / ".0123456789abcdef.writing.tmp"
    for path in (stale, fresh):
        path.write_text('{"half": ')
    old = time.time() - hresults.STALE_TEMPORARY_S - 10
    os.utime(stale, (old, old))
    assert store.remove_stale_temporaries() == [stale]
    assert not stale.exists() and fresh.exists()
    assert len(store.paths()) == 1


def test_a_claimed_run_is_put_off_then_waited_for(tmp_path):
    store = ResultsStore(tmp_path)
    busy, free = fake_result(seed=1), fake_result(seed=2)
    order = []
    with store.claim(busy.config) as stored:  # as if another process were training it
        assert stored is None
        claims = store.claim_each([busy.config, free.config])
        config, stored = next(claims)
        assert (config, stored) == (free.config, None)
        order.append(config)
        store.save(free)
        store.save(busy)  # "the other process" finishes its run and releases the claim
    config, stored = next(claims)
    assert config == busy.config and stored is not None  # loaded, not to be trained again
    assert next(claims, None) is None
    assert not list(tmp_path.glob(".*.lock"))  # released claims leave no file


def test_the_claim_of_a_killed_process_expires(tmp_path, monkeypatch):
    monkeypatch.setattr(hresults, "CLAIM_LEASE_S", 1.0)
    config = fake_result().config
    # A process takes the claim and dies without releasing it.
    script = (
        "import os, signal, sys\n"
        "from hyperlr.lab import results\n"
        "from hyperlr.lab.train import RunConfig\n"
        "results.CLAIM_LEASE_S = 1.0\n"
        "store = results.ResultsStore(sys.argv[1])\n"
        "held = store.claim(RunConfig.from_dict(__import__('json').loads(sys.argv[2])))\n"
        "held.__enter__()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), json.dumps(config.to_dict())], check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert list(tmp_path.glob(".*.lock"))  # the dead process's claim is still there
    start = time.monotonic()
    with ResultsStore(tmp_path).claim(config, timeout=30) as stored:
        assert stored is None
    assert time.monotonic() - start < 10


def test_a_worker_that_does_not_see_the_folder_is_told_so(tmp_path):
    store = ResultsStore(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="results_dir: .*elsewhere.* same absolute path"):
        with store.claim(fake_result().config):
            pass
    assert not (tmp_path / "elsewhere").exists()


def test_claims_fall_back_to_an_os_lock_without_soft_file_lease(tmp_path, monkeypatch):
    # A GPU image's older filelock has FileLock but no SoftFileLease: claims still exclude.
    monkeypatch.setattr(hresults, "SoftFileLease", None)
    store = ResultsStore(tmp_path)
    result = fake_result()
    assert type(store._lease(result.config)).__name__.endswith("FileLock")
    with store.claim(result.config) as stored:
        assert stored is None
        with pytest.raises(hresults.Timeout):
            with ResultsStore(tmp_path).claim(result.config, timeout=0.2):
                pass
        store.save(result)
    with store.claim(result.config, timeout=1) as stored:
        assert stored is not None
