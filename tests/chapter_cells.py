"""A chapter's cells run in this process as far as its first training step.

The experiment chapters check their parameters before anything trains. :func:`run_until_training`
runs a chapter's code cells in order, with parameters injected after its ``parameters`` cell as
papermill injects them, in this process; with :func:`stop_before_training` in place the call that
would train raises :class:`ReachedTraining` instead. A refused parameter raises the chapter's own
error, in a fraction of the time a kernel takes to start.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]


class ReachedTraining(Exception):
    """Raised where the chapter would start training: it accepted the command's parameters."""


def stop_before_training(monkeypatch) -> None:
    """Make the chapters' trainers (sweeps and the tuning protocol) raise ReachedTraining."""
    from hyperlr.lab import sweep, tune

    def would_train(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr(sweep, "run_sweep", would_train)
    monkeypatch.setattr(tune, "protocol", would_train)


def command_parameters(command: str) -> tuple[Path, dict]:
    """The notebook a papermill command runs and its parameters, parsed as papermill parses them
    (``-p`` values by ``papermill.cli``'s own type rules, ``-y`` as YAML)."""
    from papermill.cli import _resolve_type

    words = shlex.split(command)
    notebook = ROOT / words[words.index("--cwd") + 2] if "--cwd" in words else ROOT / words[1]
    parameters: dict = {}
    k = 0
    while k < len(words):
        if words[k] == "-p":
            parameters[words[k + 1]] = _resolve_type(words[k + 2])
            k += 3
        elif words[k] == "-y":
            parameters.update(yaml.safe_load(words[k + 1]))
            k += 2
        else:
            k += 1
    return notebook, parameters


def run_until_training(notebook: Path, parameters: dict) -> None:
    """The chapter's code cells in order, with ``parameters`` injected after its parameters cell
    (as papermill injects them); raises :class:`ReachedTraining` where training would start."""
    namespace: dict = {"__name__": "__chapter__"}
    for cell in nbformat.read(notebook, as_version=4).cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "install-hyperlr" in tags:
            continue
        source = "\n".join(
            line for line in cell.source.split("\n") if not line.lstrip().startswith(("%", "!"))
        )
        exec(compile(source, notebook.name, "exec"), namespace)
        if "parameters" in tags:
            unknown = sorted(set(parameters) - set(namespace))
            assert not unknown, f"{unknown} are not parameters of {notebook.name}"
            namespace.update(parameters)
