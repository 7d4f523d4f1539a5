"""The book's bibliography style (_ext/bibstyle.py) renders titles as published and shortens
long author lists to "et al."."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pybtex.database import parse_file
from pybtex.plugin import find_plugin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("bibstyle", ROOT / "_ext" / "bibstyle.py")
    bibstyle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bibstyle)
    bibstyle.setup(app=None)
    style = find_plugin("pybtex.style.formatting", "hyperlr")()
    entries = parse_file(ROOT / "references.bib").entries
    return {
        entry.key: entry.text.render_as("text") for entry in style.format_entries(entries.values())
    }


def test_titles_keep_their_capitals(rendered):
    assert (
        "HyperbolicLR: Epoch insensitive learning rate scheduler" in rendered["kim2024hyperboliclr"]
    )
    assert "SGDR: Stochastic Gradient Descent" in rendered["loshchilov2017sgdr"]


def test_long_author_lists_become_et_al(rendered):
    assert rendered["akiba2019optuna"].startswith("Takuya Akiba et al.")
    assert rendered["hu2024minicpm"].startswith("Shengding Hu et al.")  # "and others"
    assert rendered["xiao2017fashion"].startswith("Han Xiao, Kashif Rasul, and Roland Vollgraf.")


def test_every_data_set_method_and_tool_is_in_the_bibliography(rendered):
    for key in [
        "xiao2017fashion",  # Fashion-MNIST
        "krizhevsky2009cifar",  # CIFAR-10
        "hu2024minicpm",  # WSD
        "defazio2024schedulefree",  # schedule-free AdamW
        "akiba2019optuna",  # Optuna
        "bergstra2011tpe",  # TPE
    ]:
        assert key in rendered
