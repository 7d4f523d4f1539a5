"""The package is typed: a user's script that imports hyperlr passes ``mypy --strict``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The user script: the release smoke test uses the schedulers, the registry and the metrics as
# a user's own code would, with every name typed.
USER_SCRIPT = ROOT / "tools" / "release_smoke.py"


def _mypy_command() -> list[str] | None:
    if importlib.util.find_spec("mypy") is not None:
        return [sys.executable, "-m", "mypy"]
    executable = os.environ.get("HYPERLR_MYPY") or shutil.which("mypy")
    return [executable] if executable else None


def test_py_typed_is_in_the_package():
    assert (ROOT / "hyperlr" / "py.typed").is_file()


def test_a_user_script_passes_mypy_strict(tmp_path):
    mypy = _mypy_command()
    if mypy is None:
        pytest.skip("mypy is not installed (pip install 'hyperlr[dev]', or set HYPERLR_MYPY)")
    script = tmp_path / "user_script.py"
    shutil.copy(USER_SCRIPT, script)
    # This checkout's hyperlr (MYPYPATH wins over the installed copy); torch and numpy from
    # the interpreter running the tests.
    env = {**os.environ, "MYPYPATH": str(ROOT)}

    def check() -> subprocess.CompletedProcess[str]:
        command = [*mypy, "--strict", "--python-executable", sys.executable]
        command += ["--cache-dir", str(tmp_path / "cache"), str(script)]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)

    done = check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout
    # A type error in the same script is caught, so the check is not vacuous.
    script.write_text(script.read_text() + "\nwrong: int = hyperlr.__version__\n")
    done = check()
    assert done.returncode == 1 and "Incompatible types in assignment" in done.stdout
