"""scripts/bootstrap: scripts/serve (postgres) and scripts/test (test) share one venv and never reinstall
each other. Run on a copy of the script with a stand-in `.venv/bin/python` that records what pip is asked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../pip.log"\n')
    python.chmod(0o755)
    return tmp_path


def bootstrap(root: Path, *extras: str) -> list[str]:
    """The `pip install -e` lines this run made."""
    log = root / ".venv" / "pip.log"
    log.unlink(missing_ok=True)
    subprocess.run([str(root / "scripts" / "bootstrap"), *extras], cwd=root, check=True, timeout=60)
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if " -e " in line]


def test_serve_and_test_extras_never_reinstall_each_other(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert bootstrap(root, "postgres")[0].endswith("-e .[postgres]")
    assert bootstrap(root, "test")[0].endswith("-e .[postgres,test]")  # the union: postgres stays
    assert bootstrap(root, "postgres") == []
    assert bootstrap(root, "test") == []
    assert bootstrap(root) == []  # the default is test
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    assert bootstrap(root, "postgres")[0].endswith("-e .[postgres]")  # a changed project installs again
