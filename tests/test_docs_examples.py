"""Every documented example runs as written: the shell blocks of the README and of the
vendor-compatibility docs, and the `curl` lines `sessionscope demo` prints, against a server on
a demo data directory (as a new user runs them after `make demo`).

The examples' own text is run: only the address (`http://127.0.0.1:8000`) is replaced by the
test server's, and `sessionscope-data` is the demo data directory (a link in the working
directory). Every HTTP answer is checked: none is a 5xx, and a 4xx only where the example
shows an error on purpose.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXE, serve_process

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "compat").glob("*.md"))]
DOC_ADDRESS = "http://127.0.0.1:8000"
#: Examples that show errors on purpose: how many of their answers are 4xx.
EXPECTED_4XX = {"ekran.md:164": 2}

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq", "openssl")),
    reason="the examples use bash, curl, jq and openssl",
)


@dataclass(frozen=True)
class Example:
    where: str  # file:line of the block's opening fence
    script: str


def _blocks() -> list[Example]:
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        start = None
        for number, line in enumerate(lines, 1):
            if start is None and line.strip() == "```sh":
                start = number
            elif start is not None and line.strip() == "```":
                script = "\n".join(lines[start : number - 1])
                if "curl" in script:
                    found.append(Example(f"{path.name}:{start}", script))
                start = None
    return found


EXAMPLES = _blocks()


@dataclass(frozen=True)
class Demo:
    base: str
    workdir: Path
    printed: list[str]  # the commands `sessionscope demo` printed


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("docs-examples")
    data = workdir / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    done = subprocess.run(
        [*EXE, "demo", "--no-serve", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "COLUMNS": "400"},
    )
    assert done.returncode == 0, done.stderr
    # The commands it prints: `curl` lines, and the variables the signed one uses.
    printed = [
        line.strip()
        for line in done.stdout.splitlines()
        if line.strip().startswith(("curl ", "AK=", "TS="))
    ]
    (workdir / "sessionscope-data").symlink_to(data)
    with serve_process(data) as base:
        yield Demo(base, workdir, printed)


def _run(demo: Demo, script: str) -> tuple[str, list[tuple[int, str]]]:
    """Run ``script`` in bash; return its output and each HTTP answer's status and URL."""
    prelude = (
        "set -eo pipefail\n"
        # Every curl reports its answer's status on stderr, marked, besides what it prints.
        "curl() { command curl -w '%{stderr}HTTP %{http_code} %{url_effective}\\n' \"$@\"; }\n"
    )
    done = subprocess.run(
        ["bash", "-c", prelude + script.replace(DOC_ADDRESS, demo.base)],
        cwd=demo.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    answers = [(int(m[1]), m[2]) for m in re.finditer(r"^HTTP (\d{3}) (\S*)$", done.stderr, re.M)]
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    return done.stdout, answers


@pytest.mark.timeout(600)
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_documented_example_runs(demo: Demo, example: Example) -> None:
    output, answers = _run(demo, example.script)
    assert answers, "the example made no request"
    statuses = [status for status, _ in answers]
    assert all(0 < s < 500 for s in statuses), answers
    errors = [a for a in answers if a[0] >= 400]
    assert len(errors) == EXPECTED_4XX.get(example.where, 0), (errors, output[-2000:])
    assert "null" not in {line.strip() for line in output.splitlines()}


@pytest.mark.timeout(600)
def test_what_demo_prints_runs(demo: Demo) -> None:
    assert len(demo.printed) >= 10
    _, answers = _run(demo, "\n".join(demo.printed))
    requests = sum(line.startswith("curl ") for line in demo.printed)
    assert [s for s, _ in answers] == [200] * requests, answers


def test_every_block_with_requests_is_found() -> None:
    names = {e.where.split(":")[0] for e in EXAMPLES}
    assert {"README.md", "ekran.md", "ncp-livestation.md", "ncp-vpe.md", "thousandeyes.md"} <= names
