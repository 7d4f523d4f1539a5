"""Launch buttons: each chapter's hidden install cell, written from _config.yml's repository."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("install_cells", ROOT / "tools" / "install_cells.py")
install_cells = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_cells)


def test_every_chapter_has_the_install_cell_of_config_yml(capsys):
    assert install_cells.main(["--check"]) == 0, capsys.readouterr().err
    for path in install_cells.chapters():
        cells = nbformat.read(path, as_version=4).cells
        code = [c for c in cells if c.cell_type == "code"]
        assert install_cells.is_install_cell(code[0]), f"{path.name}: not the first code cell"
        assert "remove-cell" in code[0].metadata["tags"]  # hidden in the book
        assert sum(install_cells.is_install_cell(c) for c in cells) == 1


def test_config_yml_is_the_only_file_naming_the_repository():
    url = install_cells.repository()["url"]
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to list the project's files")
    naming = []
    for name in listed.stdout.split():
        path = ROOT / name
        if name == "_config.yml" or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        text = path.read_text(errors="ignore")
        if path.suffix == ".ipynb":
            cells = nbformat.reads(text, as_version=4).cells
            text = "".join(c.source for c in cells if not install_cells.is_install_cell(c))
        if url.split("://", 1)[1] in text:
            naming.append(name)
    assert naming == []


def test_the_cell_follows_a_changed_repository(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text(
        "repository:\n"
        "  url: https://github.com/someone/fork/\n"
        "  branch: dev\n"
        "  path_to_book: book\n"
    )
    source = install_cells.install_source(install_cells.repository(config))
    assert '"https://github.com/someone/fork"' in source and '"dev"' in source
    assert 'Path.home() / "fork"' in source and 'clone / "book/chapters"' in source


def run_cell(monkeypatch, tmp_path, hyperlr_installed: bool) -> tuple[list, list]:
    commands, moves = [], []
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return real_find_spec(name, *args) if hyperlr_installed or name != "hyperlr" else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: commands.append(command))
    monkeypatch.setattr(os, "chdir", moves.append)
    monkeypatch.setattr(Path, "home", lambda: tmp_path)
    exec(install_cells.install_source(install_cells.repository()), {})
    return commands, moves


def test_the_cell_does_nothing_where_hyperlr_is_installed(monkeypatch, tmp_path):
    assert run_cell(monkeypatch, tmp_path, hyperlr_installed=True) == ([], [])


def test_the_cell_clones_installs_and_moves_to_the_chapters_where_hyperlr_is_missing(
    monkeypatch, tmp_path
):
    commands, moves = run_cell(monkeypatch, tmp_path, hyperlr_installed=False)
    repo = install_cells.repository()
    clone = tmp_path / repo["url"].rsplit("/", 1)[-1]
    assert commands == [
        ["git", "clone", "--depth", "1", "--branch", repo["branch"], repo["url"], str(clone)],
        [sys.executable, "-m", "pip", "install", "-q", f"{clone}[book]"],
    ]
    assert moves == [clone / "chapters"]
