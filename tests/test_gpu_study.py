"""tools/gpu_study.py's plumbing on the CPU at tiny scale: groups, the time limit, resuming and
the archive. (Its CUDA check and the paper-scale studies need a GPU machine.)"""

from __future__ import annotations

import importlib.util
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_study():
    spec = importlib.util.spec_from_file_location("gpu_study", ROOT / "tools" / "gpu_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(gpu_study, tmp_path: Path, archive: str, *extra: str) -> list[str]:
    gpu_study.main(
        ["--study", "sequence", "--device", "cpu", "--skip-check", "--tiny",
         "--results-root", str(tmp_path), "--archive", str(tmp_path / archive), *extra]
    )  # fmt: skip
    with tarfile.open(tmp_path / archive) as tar:
        return tar.getnames()


def test_stops_at_the_time_limit_and_continues(gpu_study, tmp_path):
    folder = "sequence_forecasting_paper_scale"
    # A limit far below one group's time: the first group trains (nothing measured yet), the
    # next would not end in time, so the command stops, packs and says what is missing.
    first = _run(gpu_study, tmp_path, "first.tar.gz", "--minutes", "0.0001", "--group-size", "7")
    runs_first = [name for name in first if name.endswith(".json")]
    assert len(runs_first) == 7
    assert f"{folder}/provenance.jsonl" in first
    # Run again: it continues with the missing runs only, and the archive holds only those.
    second = _run(gpu_study, tmp_path, "second.tar.gz", "--minutes", "10", "--group-size", "7")
    runs_second = [name for name in second if name.endswith(".json")]
    assert len(runs_second) == 7 and not set(runs_first) & set(runs_second)
    sessions = (tmp_path / folder / "provenance.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in sessions]
    assert [r["runs_trained"] for r in records] == [7, 7]
    assert [r["runs_missing"] for r in records] == [7, 0]
    assert records[0]["group_size"] == 7 and records[0]["precision"] == "float32"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--minutes", "0"], "--minutes must be > 0"),
        (["--minutes", "1", "--group-size", "0"], "--group-size must be >= 1"),
        (["--minutes", "1", "--device", "cpu"], "--device cpu needs --skip-check"),
    ],
)
def test_bad_arguments_stop_before_any_work(gpu_study, tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit):
        gpu_study.main(["--study", "image", "--results-root", str(tmp_path), *arguments])
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
