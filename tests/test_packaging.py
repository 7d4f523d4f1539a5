"""The package as a user installs it: a lean wheel, and the laboratory behind its extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the laboratory and the book import beyond torch, numpy and torch's own requirements
# (filelock and sympy among them); a user of the schedulers alone has none of them.
LAB_ONLY = (
    "joblib optuna pandas schedulefree scipy torchvision tqdm "
    "matplotlib seaborn plotly sklearn statsmodels myst_nb IPython"
).split()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A wheel and an sdist built from this checkout, as ``python -m build`` makes them."""
    pytest.importorskip("build", reason="needs the dev extra (build)")
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    # The files the package is built from, copied so that the checkout gets no egg-info;
    # --no-isolation: the build backend (setuptools) is installed already, nothing is fetched.
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    skipped = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "hyperlr", source / "hyperlr", ignore=skipped)
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


def test_wheel_and_sdist_build_and_pass_twine_check(dist):
    pytest.importorskip("twine", reason="needs the dev extra (twine)")
    files = sorted(p.name for p in dist.iterdir())
    assert [f for f in files if f.endswith(".whl")] and [f for f in files if f.endswith(".tar.gz")]
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_wheel_requires_only_torch_and_numpy_and_holds_the_laboratory(dist):
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_file = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_file).decode())
    requires = metadata.get_all("Requires-Dist")
    unconditional = sorted(r.split(">")[0].split("=")[0].strip() for r in requires if ";" not in r)
    assert unconditional == ["numpy", "torch"]
    assert set(metadata.get_all("Provides-Extra")) >= {"lab", "book", "dev", "postgres", "dask"}
    assert {"hyperlr/__init__.py", "hyperlr/schedulers.py", "hyperlr/lab/__init__.py"} <= set(names)
    assert "hyperlr/lab/train.py" in names and "hyperlr/lab/explorer.py" in names
    assert not [n for n in names if n.startswith(("tests/", "chapters/", "results/"))]


# Runs in a fresh interpreter where the laboratory's packages cannot be imported
# (sys.modules[name] = None makes both `import name` and importlib's find_spec fail).
WITHOUT_LAB = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
import torch
import hyperlr
from hyperlr import HyperbolicLR, make_scheduler
optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
scheduler = HyperbolicLR(optimizer, upper_bound=10, max_iter=10, infimum_lr=1e-3)
for _ in range(10):
    optimizer.step()
    scheduler.step()
print("lr", optimizer.param_groups[0]["lr"])
make_scheduler("EH", optimizer, epochs=10)
print("loaded", sorted(n for n in {blocked!r} if sys.modules.get(n) is not None))
try:
    import hyperlr.lab.train
except ImportError as error:
    print("error", error)
"""


def test_the_schedulers_work_without_the_laboratorys_packages():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LAB.format(blocked=LAB_ONLY)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert float(lines["lr"]) == pytest.approx(1e-3)  # N = U: the budget ends at the infimum
    assert lines["loaded"] == "[]"
    assert "pip install 'hyperlr[lab]'" in lines["error"]


def _source_version() -> str:
    """``__version__`` as written in hyperlr/__init__.py, read without importing it."""
    import ast

    tree = ast.parse((ROOT / "hyperlr" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__version__":
            return str(ast.literal_eval(node.value))
    raise AssertionError("hyperlr/__init__.py sets no __version__")


def test_the_version_has_one_source():
    import hyperlr

    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "hyperlr.__version__" }' in pyproject
    assert "\nversion =" not in pyproject.split("[project]")[1].split("\n[")[0]
    assert hyperlr.__version__ == _source_version()
    assert f"## [{_source_version()}]" in (ROOT / "CHANGELOG.md").read_text()


def test_the_wheel_is_typed_and_carries_the_version(dist):
    version = _source_version()
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    assert wheels == [f"hyperlr-{version}-py3-none-any.whl"]
    assert (dist / f"hyperlr-{version}.tar.gz").is_file()
    with zipfile.ZipFile(dist / wheels[0]) as archive:
        names = archive.namelist()
        metadata_file = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_file).decode())
    assert "hyperlr/py.typed" in names
    assert metadata["Version"] == version


def test_the_release_workflow_checks_then_publishes_with_trusted_publishing():
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    for needed in (
        'tags: ["v*"]',
        "python -m build",
        "twine check --strict",
        "release_smoke.py",
        "mypy --strict",
        "pypa/gh-action-pypi-publish@release/v1",
        "id-token: write",
        "name: pypi",
        "needs: [build, smoke]",
    ):
        assert needed in workflow, needed
    assert "password" not in workflow and "PYPI_TOKEN" not in workflow
