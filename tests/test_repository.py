"""The repository tracks source and documentation only: no wheels, archives or other binaries
(build them; do not commit them)."""

from __future__ import annotations

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
