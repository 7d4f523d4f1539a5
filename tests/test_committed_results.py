"""results/README.md states what each committed folder holds and what it cost to train: checked
against the run files, so the table has to change when the results do."""

import re
from pathlib import Path

import pytest

from hyperlr.lab.results import read_run

RESULTS = Path(__file__).resolve().parents[1] / "results"


def readme_rows(readme: Path) -> dict[str, tuple[int, float]]:
    """Folder -> (runs, training hours), from the table of a results README."""
    rows = {}
    for line in readme.read_text().splitlines():
        match = re.match(r"\| `(\w+)/` \|.*\| (\d+) \| ([\d.]+) h \|$", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), float(match.group(3)))
    return rows


def disagreements(folder: Path, runs: int, hours: float) -> list[str]:
    """What a table row gets wrong about the run files of ``folder`` (hours to the row's 0.01)."""
    results = [read_run(path) for path in folder.rglob("*.json")]
    found = sum(result.wall_time_s for result in results) / 3600
    wrong = []
    if len(results) != runs:
        wrong.append(f"{folder.name}: {len(results)} runs, the table says {runs}")
    if abs(found - hours) > 0.005:
        wrong.append(f"{folder.name}: {found:.2f} h of training, the table says {hours}")
    return wrong


COMMITTED = readme_rows(RESULTS / "README.md")


def test_the_table_lists_every_folder():
    assert set(COMMITTED) == {path.name for path in RESULTS.iterdir() if path.is_dir()}


@pytest.mark.parametrize("folder", sorted(COMMITTED))
def test_runs_and_training_time_match_the_files(folder):
    assert disagreements(RESULTS / folder, *COMMITTED[folder]) == []


def test_a_wrong_row_is_caught():
    runs, hours = COMMITTED["image_classification"]
    found = disagreements(RESULTS / "image_classification", runs + 1, hours + 0.1)
    assert len(found) == 2 and "runs" in found[0] and "training" in found[1]
