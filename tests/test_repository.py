"""The repository tracks source and documentation only: no wheels, archives or other binaries
(build them; do not commit them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Packages, archives and compiled files: never tracked.
FORBIDDEN_SUFFIXES = (
    ".whl", ".egg", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar",
    ".jar", ".so", ".dylib", ".dll", ".exe", ".pyc", ".pyo", ".o", ".a", ".db", ".sqlite",
)  # fmt: skip
#: Binary files that belong: the documentation's images.
ALLOWED_BINARY = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico")
#: A tracked file larger than this is almost surely something built or downloaded.
MAX_BYTES = 1_000_000


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_package_archive_or_binary_is_tracked() -> None:
    found = []
    for name in _tracked():
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        lower = name.lower()
        if lower.endswith(FORBIDDEN_SUFFIXES):
            found.append(f"{name}: a package, archive or compiled file")
        elif path.stat().st_size > MAX_BYTES:
            found.append(f"{name}: {path.stat().st_size} bytes")
        elif not lower.endswith(ALLOWED_BINARY) and b"\0" in path.read_bytes()[:8192]:
            found.append(f"{name}: binary content")
    assert not found, "tracked files that do not belong in git:\n" + "\n".join(found)


SRC = ROOT / "src" / "sessionscope"
#: The core: what the vendor-compatible APIs call, and what must not know them. Vendors add
#: what they need through ``sessionscope.registry`` (see docs/architecture.md).
CORE = ("store", "domain", "service", "ingest", "registry.py", "config.py", "management.py")
CORE += ("app.py", "security.py")
#: Names of the vendors (and their products) whose APIs ``compat/`` speaks.
VENDOR_NAMES = re.compile(
    r"ncp|naver|ekran|syteca|thousand[ _-]?eyes|live[ _-]?station|\bvpe\b", re.IGNORECASE
)
#: ``path: why`` for a core module that must name a vendor. Empty: none must.
VENDOR_NAMES_ALLOWED: dict[str, str] = {}
#: The most lines a module of src/ may have: past it, split it by concern.
MAX_MODULE_LINES = 600


def _core_modules() -> list[Path]:
    found: list[Path] = []
    for part in CORE:
        path = SRC / part
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def test_the_core_names_no_vendor() -> None:
    """store/, domain/, service/, ingest/ and the core's top modules name no vendor: each
    compat module registers its key kinds, settings, filter names and demo part instead."""
    modules = _core_modules()
    assert len(modules) > 30 and all(p.is_file() for p in modules), modules
    found = []
    for path in modules:
        rel = str(path.relative_to(SRC))
        if rel in VENDOR_NAMES_ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := VENDOR_NAMES.search(line):
                found.append(f"{rel}:{number}: {match.group()!r} in {line.strip()[:80]}")
    assert not found, "the core names a vendor (register it from compat/):\n" + "\n".join(found)


def test_no_module_is_over_the_bound() -> None:
    """No module in src/ is longer than MAX_MODULE_LINES lines."""
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"
