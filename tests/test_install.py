"""What each README command installs: `make demo` only what the server runs, `make test` the
test and lint tools too."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Packages of the ``dev`` extra: the server must run without them.
DEV_ONLY = {"pytest", "hypothesis", "mypy", "ruff", "playwright", "ncloud_server", "_pytest"}


def _planned(tmp_path: Path, target: str) -> str:
    """The commands ``make TARGET`` would run on a clean clone (``make -n``)."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    out = subprocess.run(
        ["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_runtime_only(tmp_path: Path) -> None:
    demo = _planned(tmp_path, "demo")
    assert "pip install -q -e .\n" in demo
    assert "[dev]" not in demo
    assert "sessionscope demo" in demo
    test = _planned(tmp_path, "test")
    assert "pip install -q -e '.[dev]'" in test and "pytest" in test


def test_the_package_imports_no_dev_tool() -> None:
    found = set()
    for path in (ROOT / "src" / "sessionscope").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(a.name.split(".")[0], path.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module.split(".")[0], path.name))
    assert not [(m, f) for m, f in found if m in DEV_ONLY]
