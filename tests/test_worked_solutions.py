"""Every worked solution of chapters 1-8 runs as the book prints it.

A solution is an admonition titled "Solution for exercise K"; its code is the indented (four
spaces) blocks inside it. Python blocks run after the chapter's own code cells, in the chapter's
namespace and folder, as a reader who typed them at the end of the notebook would run them.
Shell blocks (``papermill ...``) are checked against the notebook they run: every ``-p`` name and
every key of ``-y`` must be a parameter of that notebook. Every papermill command printed in a
chapter or the README also runs, in process, as far as the chapter's first training step: its
parameters parsed as papermill parses them, the chapter's cells executed in order up to the call
that would train (stopped there), so a value the chapter refuses fails here, not for the reader.

Convention for tiny sizes: a solution may carry an HTML comment, invisible in the book,

    <!-- solution-test: {"results_dir": "TMP", "epochs": 2} -->

whose JSON object is assigned into the namespace before the solution's code runs ("TMP" becomes
a fresh temporary folder); a top-level assignment ``name = ...`` of the solution to a name it
sets is skipped, so the solution may define its own sizes. The names it sets must already exist
in the namespace, or be named by the solution's own code, so a renamed parameter cannot hide
behind the override.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import matplotlib
import nbformat
import pytest
import yaml
from chapter_cells import (
    ReachedTraining,
    command_parameters,
    run_until_training,
    stop_before_training,
)

matplotlib.use("agg")

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))  # every chapter, new ones included

ADMONITION = re.compile(r"```\{admonition\} Solution for exercise (\d+)\n(.*?)\n\s*```", re.DOTALL)
OVERRIDE = re.compile(r"<!--\s*solution-test:\s*(\{.*?\})\s*-->", re.DOTALL)


def _dedent_blocks(body: str) -> list[str]:
    """The indented code blocks of an admonition body, each dedented."""
    lines = body.split("\n")
    # An admonition nested in a numbered list is itself indented: measure from its options line.
    base = min(
        (len(line) - len(line.lstrip()) for line in lines if line.strip().startswith(":class:")),
        default=0,
    )
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        stripped = line[base:] if line[:base].strip() == "" else line
        if stripped.startswith("    ") or (current and stripped.strip() == ""):
            current.append(stripped[4:])
        else:
            if current:
                blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return ["\n".join(block).strip("\n") for block in blocks if "".join(block).strip()]


def solutions(notebook: Path) -> list[tuple[str, list[str], dict]]:
    """(exercise number, code blocks, tiny-size overrides) of every solution in a chapter."""
    nb = nbformat.read(notebook, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for match in ADMONITION.finditer(cell.source):
            body = match.group(2)
            override = OVERRIDE.search(body)
            settings = json.loads(override.group(1)) if override else {}
            found.append((match.group(1), _dedent_blocks(OVERRIDE.sub("", body)), settings))
    return found


CASES = [
    pytest.param(nb, number, blocks, settings, id=f"{nb.name[:2]}-ex{number}")
    for nb in NOTEBOOKS
    for number, blocks, settings in solutions(nb)
    if blocks
]


def is_shell(block: str) -> bool:
    return block.split()[0] in {"papermill", "cp", "make", "python", "pip"}


def chapter_namespace(notebook: Path) -> dict:
    """The chapter's code cells run in order (install cells and IPython magics left out)."""
    nb = nbformat.read(notebook, as_version=4)
    namespace: dict = {"__name__": "__chapter__"}
    for cell in nb.cells:
        if cell.cell_type != "code" or "install-hyperlr" in cell.metadata.get("tags", []):
            continue
        source = "\n".join(
            line for line in cell.source.split("\n") if not line.lstrip().startswith(("%", "!"))
        )
        exec(compile(source, f"{notebook.name}", "exec"), namespace)
    return namespace


def parameter_names(notebook: Path) -> set[str]:
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {m.group(1) for m in re.finditer(r"^(\w+)\s*=", cell.source, re.MULTILINE)}


def check_shell(block: str) -> None:
    commands = [c for c in block.replace("\\\n", " ").split("\n") if c.strip()]
    for command in commands:
        words = shlex.split(command)
        if words[0] != "papermill":
            continue
        notebook = ROOT / words[words.index("--cwd") + 2] if "--cwd" in words else ROOT / words[1]
        assert notebook.exists(), f"{command}: no notebook {notebook}"
        names = parameter_names(notebook)
        given = []
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "-p":
                given.append(value)
            elif flag == "-y":
                given.extend(yaml.safe_load(value))
        unknown = sorted(set(given) - names)
        assert not unknown, f"{command}: {unknown} are not parameters of {notebook.name}"


@pytest.fixture(scope="module")
def namespaces():
    return {}


@pytest.mark.parametrize(("notebook", "number", "blocks", "settings"), CASES)
def test_solution_runs(notebook, number, blocks, settings, namespaces, tmp_path, monkeypatch):
    monkeypatch.chdir(CHAPTERS)
    if notebook not in namespaces:
        namespaces[notebook] = chapter_namespace(notebook)
    # One namespace per chapter, shared by its solutions in order, as at the end of the notebook
    # (the chapter's functions read their globals from it); overridden names are restored.
    namespace = namespaces[notebook]
    python = [b for b in blocks if not is_shell(b)]
    for block in blocks:
        if is_shell(block):
            check_shell(block)
    source = "\n".join(python)
    saved = {}
    for name, value in settings.items():
        assert name in namespace or re.search(rf"\b{name}\b", source), (
            f"solution-test override {name!r} is not a name of the chapter or the solution"
        )
        saved[name] = namespace.get(name)
        source = re.sub(
            rf"^{name} = .*$", f"pass  # {name} set by solution-test", source, flags=re.MULTILINE
        )
        namespace[name] = str(tmp_path / "tmp") if value == "TMP" else value
    try:
        exec(compile(source, f"{notebook.name} exercise {number}", "exec"), namespace)
    finally:
        namespace.update(saved)
        import matplotlib.pyplot as plt

        plt.close("all")


def test_every_chapter_has_solutions():
    """The extraction finds the solutions (a changed admonition title would skip them all)."""
    # Every chapter with an exercises section has its worked solutions.
    taught = [nb for nb in NOTEBOOKS if "## Exercises" in nb.read_text()]
    counts = {nb.name[:2]: len(solutions(nb)) for nb in taught}
    assert all(counts[k] >= 3 for k in counts), counts
    assert sum(1 for case in CASES) >= 15


def test_extraction_dedents_nested_blocks():
    body = "   :class: dropdown\n       x = 1\n       y = x + 1\n\n   gives 2"
    assert _dedent_blocks(body) == ["x = 1\ny = x + 1"]


def printed_commands() -> list[tuple[str, str]]:
    """Every ``papermill`` command printed in a chapter's markdown (tips, solutions, prose
    blocks), continuation lines joined."""
    found = []
    for notebook in NOTEBOOKS:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type != "markdown":
                continue
            lines = [line.strip() for line in cell.source.split("\n")]
            for k, line in enumerate(lines):
                if not re.match(r"papermill (--cwd \S+ )?\S+\.ipynb", line):
                    continue  # prose that mentions papermill
                command = line
                while command.endswith("\\") and k + 1 < len(lines):
                    k += 1
                    command = command[:-1] + " " + lines[k]
                # A -y mapping may run over several lines inside its quotes.
                while command.count('"') % 2 and k + 1 < len(lines):
                    k += 1
                    command += " " + lines[k]
                found.append((notebook.name, command))
    return found


def readme_commands() -> list[tuple[str, str]]:
    """The ``papermill`` commands of the README's shell blocks, continuation lines joined."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    return [
        ("README.md", line.strip().removeprefix(".venv/bin/"))
        for line in text.split("\n")
        if re.match(r"\s*(\.venv/bin/)?papermill ", line)
    ]


@pytest.mark.parametrize(("chapter", "command"), printed_commands() + readme_commands())
def test_printed_command_names_real_parameters(chapter, command):
    check_shell(command)


@pytest.mark.parametrize(("chapter", "command"), printed_commands() + readme_commands())
def test_printed_command_is_accepted_up_to_training(chapter, command, tmp_path, monkeypatch):
    from hyperlr.lab import tune

    stop_before_training(monkeypatch)
    # Nor are the data sets read: the paper-scale commands name CIFAR-10, which a test machine
    # need not hold; everything else the chapter checks runs.
    monkeypatch.setattr(tune, "_check_data", lambda configs: None)
    monkeypatch.chdir(CHAPTERS)
    notebook, parameters = command_parameters(command)
    parameters["results_dir"] = str(tmp_path / "runs")  # never the command's own folder
    try:
        with pytest.raises(ReachedTraining):
            run_until_training(notebook, parameters)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


def test_a_refused_value_fails_before_training(tmp_path, monkeypatch):
    command = (
        "papermill --cwd chapters chapters/05_image_classification.ipynb out.ipynb "
        '-y "{budgets: [5, 40], scheduler_overrides: {H: {upper_bound: 25}}}"'
    )
    monkeypatch.chdir(CHAPTERS)
    notebook, parameters = command_parameters(command)
    assert parameters["budgets"] == [5, 40]
    parameters["results_dir"] = str(tmp_path / "runs")
    with pytest.raises(ValueError, match="upper_bound"):
        run_until_training(notebook, parameters)


def test_printed_commands_found():
    chapters = {chapter for chapter, _ in printed_commands() + readme_commands()}
    assert {
        "05_image_classification.ipynb",
        "06_sequence_forecasting.ipynb",
        "07_tune_short_train_long.ipynb",
        "08_operator_learning.ipynb",
        "README.md",
    } <= chapters
    _, parameters = command_parameters(
        "papermill a.ipynb b.ipynb -p n 3 -p x 0.5 -p flag False -p none None -p s all "
        '-y "{k: [1]}"'
    )
    assert parameters == {"n": 3, "x": 0.5, "flag": False, "none": None, "s": "all", "k": [1]}


def test_check_shell_rejects_unknown_parameter():
    command = (
        "papermill --cwd chapters chapters/08_operator_learning.ipynb out.ipynb "
        '-p results_dir /tmp/x -y "{train_subsets: all}"'
    )
    with pytest.raises(AssertionError, match="train_subsets"):
        check_shell(command)
