"""The documentation keeps up with the code: commands, settings and metrics are all documented."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from sessionscope import registry
from sessionscope.cli import app
from sessionscope.service import METRICS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_names(group: typer.Typer, prefix: str = "") -> list[str]:
    names = [
        f"{prefix}{c.name or c.callback.__name__}" for c in group.registered_commands if c.callback
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        names += command_names(sub.typer_instance, f"{prefix}{sub.name} ")
    return names


def test_every_command_is_in_the_readme() -> None:
    missing = [n for n in command_names(app) if f"sessionscope {n}" not in README]
    assert not missing, f"undocumented commands: {missing}"


def test_every_setting_is_in_the_readme() -> None:
    source = (ROOT / "src/sessionscope/config.py").read_text()
    names = set(re.findall(r'"(SESSIONSCOPE_[A-Z_]+)"', source))
    assert names
    names |= {s.env for s in registry.settings()}  # those the vendor-compatible APIs read
    assert "SESSIONSCOPE_RATE_LIMIT_PER_MINUTE" in names
    missing = sorted(n for n in names if n not in README)
    assert not missing, f"undocumented settings: {missing}"


def test_every_timeseries_metric_is_in_the_readme() -> None:
    missing = [m for kind in METRICS.values() for m in kind if f"`{m}`" not in README]
    assert not missing, f"undocumented metrics: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:1200]
    assert "make demo" in head and "make test" in head


def test_the_docs_stand_on_their_own() -> None:
    """No document points outside the repository (a reader of a clone has nothing else)."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        assert "/work/" not in text and "../shared" not in text, path
