"""The README's quick start, read out of README.md and run as written against a server started by
scripts/serve (on free ports, in a temporary directory), so the README cannot drift from the code."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
STEP_DONE = "@@quick-start step done: "


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def quick_start() -> list[Step]:
    """The `$ command` lines of the Quick start's console block, each with the output lines under it."""
    section = (ROOT / "README.md").read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    steps: list[Step] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif line.strip():
            steps[-1].expected.append(line.strip())
    return steps


def expected_pattern(line: str, port: int) -> re.Pattern[str]:
    """A README output line as a pattern: `...` (with the example text before it, as in `Xq3...`) stands
    for anything, the README's port 6000 for ours."""
    parts = [re.escape(part.replace(":6000", f":{port}")) for part in re.split(r"[\w-]*\.\.\.", line)]
    return re.compile(".*".join(parts))


def test_the_quick_start_covers_the_first_hour() -> None:
    commands = [step.command for step in quick_start()]
    assert commands[:2] == ["scripts/serve", ". .venv/bin/activate"]
    for verb in ("create", "query", "pull", "update", "cancel"):
        assert any(f"spsp-pull {verb} " in command for command in commands), verb


async def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    steps = quick_start()[2:]  # the test starts the server (as scripts/serve does) and puts .venv/bin on PATH
    server = ServerProcess(
        tmp_path / "spsp-data",
        embedded_btp=True,
        command=[str(ROOT / "scripts" / "serve")],
        cwd=tmp_path,
        ready_timeout=300,  # scripts/serve installs what is missing first
    )
    async with server:
        assert (tmp_path / "spsp-data" / "auth-token").exists()  # where the CLI finds the admin key
        script = "set -euo pipefail\n" + "".join(
            f"{step.command}\necho '{STEP_DONE}{number}'\n" for number, step in enumerate(steps)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPSP_", "VIRTUAL_ENV"))}
        env |= {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # Only the ports differ from the README's defaults (6000 and 7768 may be taken here).
            "SPSP_SERVER": server.url,
            "SPSP_PAYEE_BTP": f"btp+ws://readme:readme-token@127.0.0.1:{server.btp_port}",
        }
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    output = out.decode()
    segments = re.split(re.escape(STEP_DONE) + r"\d+\n", output)
    done = len(segments) - 1
    failed = steps[done].command if done < len(steps) else None
    assert process.returncode == 0, f"{failed!r} failed:\n{output}\n{err.decode()}"
    assert done == len(steps)
    for step, segment in zip(steps, segments, strict=False):
        lines = [line.strip() for line in segment.splitlines()]
        for expected in step.expected:
            pattern = expected_pattern(expected, server.port)
            assert any(pattern.fullmatch(line) for line in lines), (step.command, expected, segment)
