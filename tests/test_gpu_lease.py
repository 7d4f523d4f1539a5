"""The GPU lease command on the CPU: deadline, group sizing, archives within the return limits,
the device-path check (passes for the real code, fails for a planted bug), and a kill -9
mid-group that loses nothing finished and is resumed without retraining."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from hyperlr.lab import grouped, lease
from hyperlr.lab.lease import (
    CheckFailure,
    Deadline,
    RunArchive,
    check_device_path,
    choose_group_size,
    group_seconds,
)

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_in_seconds_and_wall_clock():
    clock = FakeClock()
    for spec, seconds in [("540", 540), ("540s", 540), ("9m", 540), ("0.5h", 1800), (90, 90)]:
        assert Deadline(spec, clock).remaining() == pytest.approx(seconds)
    wall = lambda: dt.datetime(2026, 12, 3, 7, 0, 0, tzinfo=dt.timezone.utc)  # noqa: E731
    deadline = Deadline("07:35", clock, wall)
    assert deadline.remaining() == pytest.approx(35 * 60)
    clock.now += 35 * 60 - 10
    assert deadline.allows(10) and not deadline.allows(10.5)
    late = Deadline("00:05", FakeClock(), lambda: dt.datetime(2026, 12, 3, 23, 55, tzinfo=dt.UTC))
    assert late.remaining() == pytest.approx(600)  # past midnight
    iso = Deadline("2026-12-03T07:10:00+00:00", FakeClock(), wall)
    assert iso.remaining() == pytest.approx(600)
    for bad in ["06:00", "0", "-5", "soon"]:
        with pytest.raises(ValueError, match="deadline"):
            Deadline(bad, FakeClock(), wall)


def test_group_seconds_and_sizing_from_measured_speed():
    # 200 epochs of 10 steps, 21 runs at 42 run-steps/s: 1000 s of training, x1.25 x1.5.
    assert group_seconds(200, 10, 21, 42.0) == pytest.approx(1000 * 1.25 * 1.5)
    rates = {1: 10.0, 7: 50.0, 21: 80.0}
    # Enough time: the fastest size.
    assert choose_group_size(rates, 140, 10, 10, remaining=1e6) == 21
    # 21 runs need 1.875*10*10*21/80 = 49.2 s; 7 runs 26.25 s; 1 run 18.75 s.
    assert choose_group_size(rates, 140, 10, 10, remaining=40) == 7
    assert choose_group_size(rates, 140, 10, 10, remaining=20) == 1
    assert choose_group_size(rates, 140, 10, 10, remaining=10) is None
    assert choose_group_size(rates, 3, 10, 10, remaining=1e6) == 3  # no more than left
    # A fixed cost per group (setup) and a larger evaluation share count against the time.
    assert group_seconds(200, 10, 21, 42.0, 0.5, 1.0, overhead_s=30) == pytest.approx(1530)
    assert choose_group_size(rates, 140, 10, 10, 40, overhead={21: 0, 7: 20, 1: 0}) == 1
    with pytest.raises(ValueError, match="rate"):
        group_seconds(1, 1, 1, 0.0)


def _returnable(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert len(files) <= lease.MAX_FILES_BACK
    for path in files:
        assert path.stat().st_size < lease.MAX_FILE_BYTES
        assert re.fullmatch(r"[A-Za-z0-9._-]+", path.name)


def test_archive_parts_stay_within_the_return_limits(tmp_path):
    archive = RunArchive(tmp_path, part_limit=6000, max_parts=2)
    (tmp_path / ".runs-1.tar.gz.x.tmp").write_bytes(b"half")  # a killed writer's leftover
    archive = RunArchive(tmp_path, part_limit=6000, max_parts=2)
    assert not list(tmp_path.glob(".*.tmp"))
    for group in range(3):
        archive.add(
            {f"f/run{group}-{k}.json": os.urandom(1000) for k in range(2)},
            append={"f/provenance.jsonl": f"{group}\n".encode()},
        )
    assert len(archive.parts()) == 2  # the third group opened a second part
    assert all(part.stat().st_size <= 6000 for part in archive.parts())
    members = archive.members()
    assert len([n for n in members if n.endswith(".json")]) == 6
    with pytest.raises(ValueError, match="exceed one archive part"):
        archive.add({"f/big.json": os.urandom(7000)})
    archive.add({"f/run3-0.json": os.urandom(2500)})
    with pytest.raises(ValueError, match="parts are full"):
        archive.add({"f/run4-0.json": os.urandom(5000)})
    _returnable(tmp_path)


def test_the_check_passes_for_the_real_code():
    report = check_device_path("cpu", models=("simple_cnn", "deeponet"), runs=3, steps=2)
    assert report["cuda"] is False
    for rows in report["models"].values():
        worst = rows["grouped vs lone on cpu, float32"]
        assert worst["losses"] <= lease.FP32_TOLERANCE


def test_the_check_fails_for_a_wrong_group_index(monkeypatch):
    real = grouped._Group.stacked

    def shifted(self, runs):  # planted bug: run k computed with run k+1's parameters
        return real(self, runs[1:] + runs[:1])

    monkeypatch.setattr(grouped._Group, "stacked", shifted)
    with pytest.raises(CheckFailure, match=r"simple_cnn: grouped vs lone .* losses of run 0"):
        check_device_path("cpu", models=("simple_cnn",), runs=3, steps=2)


def _command(out: Path, deadline: str = "900") -> list[str]:
    return [
        sys.executable, str(ROOT / "tools" / "gpu_study.py"), "--deadline", deadline,
        "--out", str(out), "--scale", "tiny", "--device", "cpu", "--skip-check",
        "--study", "sequence", "--sizes", "7", "--measure-steps", "1", "--reserve", "0",
        "--margin", "1",
    ]  # fmt: skip


def _runs(out: Path) -> tuple[list[str], list[str]]:
    names, provenance = [], []
    for part in sorted(out.glob("runs-*.tar.gz")):
        with tarfile.open(part) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    names.append(member.name)
                else:
                    provenance += tar.extractfile(member).read().decode().splitlines()
    return names, provenance


def _reported_groups(out: Path) -> int:
    try:
        return len(json.loads((out / "report.json").read_text())["groups"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_kill_mid_group_keeps_finished_groups_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(_command(out), env=env, stdout=subprocess.PIPE, text=True)
    try:
        start = time.monotonic()
        while _reported_groups(out) == 0:
            assert process.poll() is None, "the command ended before its first group"
            assert time.monotonic() - start < 240
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    first, provenance = _runs(out)
    archived = [json.loads(line) for line in provenance]
    # Only whole groups reach the archive, each with its provenance line; the report is written
    # after the archive, so a kill between the two leaves it one group behind, never ahead.
    assert sum(record["runs"] for record in archived) == len(first)
    assert 0 < len(first) < 14
    assert 1 <= _reported_groups(out) <= len(archived)
    done = subprocess.run(_command(out), env=env, capture_output=True, text=True, check=True)
    assert "every run of the studies is finished" in done.stdout
    names, provenance = _runs(out)
    assert len(names) == len(set(names)) == 14 and set(first) <= set(names)
    # The rerun trained the missing runs only: one group, or several where the planner, timing
    # a loaded machine, cut them smaller.
    rerun = [json.loads(line) for line in provenance[len(archived) :]]
    assert sum(record["runs"] for record in rerun) == 14 - len(first)
    report = json.loads((out / "report.json").read_text())
    assert report["runs_already_in_out"] == len(first)
    assert sum(group["runs"] for group in report["groups"]) == 14 - len(first)
    _returnable(out)


def test_a_failed_check_stops_the_command_before_training(tmp_path, monkeypatch):
    real = grouped._Group.stacked
    monkeypatch.setattr(grouped._Group, "stacked", lambda self, runs: real(self, runs[::-1]))
    with pytest.raises(SystemExit) as stopped:
        lease.main(
            ["--deadline", "600", "--out", str(tmp_path), "--scale", "tiny", "--device", "cpu",
             "--study", "sequence"]
        )  # fmt: skip
    assert stopped.value.code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"].startswith("check failed: simple_cnn: grouped vs lone")
    assert not list(tmp_path.glob("runs-*"))
