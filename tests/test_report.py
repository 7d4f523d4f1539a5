"""hyperlr.lab.report: what a chapter glued, recorded for a rerun's own notebook."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from hyperlr.lab import report


@pytest.fixture(autouse=True)
def empty_record(monkeypatch):
    monkeypatch.setattr(report, "_GLUED", {})


def test_glue_records_values_and_the_table_rounds_only_non_integers():
    fig = plt.figure()
    report.glue("a-fig", fig, display=False)
    report.glue("a-float", np.float64(0.123456), display=False)
    report.glue("an-int", np.int64(200), display=False)
    report.glue("a-text", "14 runs of digits", display=False)
    report.glue("a-float", 2 / 3, display=False)  # glued again: the last value counts
    plt.close(fig)
    assert list(report.glued()) == ["a-fig", "a-float", "an-int", "a-text"]
    assert report.glued()["a-fig"] is fig
    table = report.glued_values()
    assert table.index.name == "glued name"
    assert table["value"].to_dict() == {
        "a-float": "0.6667",
        "an-int": "200",
        "a-text": "14 runs of digits",
    }


def test_glue_rejects_an_empty_name():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        report.glue("", 1.0, display=False)


EXECUTED_SOURCE = """
%matplotlib inline
import matplotlib.pyplot as plt
from myst_nb import glue

fig = plt.figure()
plt.plot([1, 2])
glue("x", 0.123456, display=False)
glue("words", "three runs", display=False)
glue("fig-a", fig, display=False)
"""

PROSE = """(sec-a)=
# A page

Value {glue:text}`x:.2f` and {glue:text}`words`, see {ref}`sec-a`, {ref}`the page <sec-a>`,
{cite}`kim2024hyperboliclr,akiba2019optuna` and {glue:text}`absent`.

```{admonition} A box
:class: warning
Inside: {glue:text}`x:.1%`.
```

```{glue:figure} fig-a
:name: fig-a

The caption of {glue:text}`words`.
```
"""


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A notebook that glues a number, a text and a figure, executed in a real kernel."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(EXECUTED_SOURCE), nbformat.v4.new_markdown_cell(PROSE)]
    )
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    path = tmp_path_factory.mktemp("filled") / "run.ipynb"
    nbformat.write(notebook, path)
    return path


def test_fill_glue_pastes_values_figures_and_plain_markdown(executed):
    import base64

    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    missing = report.fill_glue(notebook)
    assert missing == ["absent"]
    prose = notebook.cells[1]
    assert prose.source.startswith("# A page\n")  # the (label)= target is gone
    assert "Value 0.12 and three runs, see *sec-a*, the page,\n" in prose.source
    assert "[kim2024hyperboliclr; akiba2019optuna] and [absent: not glued by this run]" in (
        prose.source
    )
    assert "> **A box**\n>\n> Inside: 12.3%." in prose.source
    assert "![fig-a](attachment:fig-a.png)\n\n*The caption of three runs.*" in prose.source
    png = base64.b64decode(prose.attachments["fig-a.png"]["image/png"])
    assert png.startswith(b"\x89PNG")
    assert "{glue" not in prose.source and "```" not in prose.source
    nbformat.validate(notebook)


def test_the_command_rewrites_a_notebook_and_refuses_an_unexecuted_one(executed, tmp_path, capsys):
    import nbformat

    target = tmp_path / "filled.ipynb"
    assert report.main([str(executed), "--output", str(target)]) == 0
    assert "not glued by this run: absent" in capsys.readouterr().out
    assert "Value 0.12" in nbformat.read(target, as_version=4).cells[1].source
    assert "{glue:text}`x:.2f`" in nbformat.read(executed, as_version=4).cells[1].source

    blank = tmp_path / "blank.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(PROSE)]), blank)
    with pytest.raises(SystemExit):
        report.main([str(blank)])
    assert "no glued outputs; run it first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "absent.ipynb")])
    assert "path must be an existing .ipynb file" in capsys.readouterr().err
